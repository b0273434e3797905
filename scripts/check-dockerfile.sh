#!/usr/bin/env bash
# Check the Dockerfile without a Docker engine:
#  1. every path a COPY takes from the build context exists and is not excluded by
#     .dockerignore; every path copied from the build stage is where the build puts it
#     (checked against a local `cargo build --release`, or $FACEPRINT_BIN);
#  2. (unless --paths-only) run the server binary with exactly the runtime stage's
#     ENTRYPOINT + CMD and ENV — /data mapped to a temporary directory, the runtime
#     WORKDIR to the repository, the port to a free one — until the stage's HEALTHCHECK
#     command succeeds, and check the SQLite database appeared on the /data volume. The
#     image binds 0.0.0.0 and ships no keys, so first check that it refuses to start
#     without FACEPRINT_AUTH__ADMIN_KEYS and says so; then run it with a key, as
#     `docker run -e FACEPRINT_AUTH__ADMIN_KEYS=…` would.
#
# Usage: scripts/check-dockerfile.sh [--paths-only]
#   FACEPRINT_BIN=path   the server binary to run (default target/release/faceprint-server)
#   CHECK_PORT=N         the port to serve on (default: a free one)
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import fnmatch, json, os, shlex, socket, subprocess, sys, tempfile, time

paths_only = "--paths-only" in sys.argv[1:]
root = os.getcwd()
failures = []

def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)

# --- parse: logical lines (continuations joined), stages -------------------------------
lines, cur = [], ""
for raw in open("Dockerfile"):
    s = raw.rstrip("\n")
    if not cur and (not s.strip() or s.lstrip().startswith("#")):
        continue
    if s.lstrip().startswith("#"):
        continue
    if s.endswith("\\"):
        cur += s[:-1] + " "
        continue
    lines.append((cur + s).strip())
    cur = ""

stages = []  # dicts: name, workdir, copies, env, entrypoint, cmd, healthcheck
for line in lines:
    word, _, rest = line.partition(" ")
    word = word.upper()
    if word == "FROM":
        parts = rest.split()
        name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else str(len(stages))
        stages.append(dict(name=name, workdir="/", copies=[], env={}, entrypoint=None,
                           cmd=None, healthcheck=None))
        continue
    st = stages[-1]
    if word == "WORKDIR":
        st["workdir"] = os.path.join(st["workdir"], rest.strip())
    elif word == "COPY":
        args = shlex.split(rest)
        flags = [a for a in args if a.startswith("--")]
        rest_args = [a for a in args if not a.startswith("--")]
        src_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
        st["copies"].append((src_stage, rest_args[:-1]))
    elif word == "ENV":
        for pair in shlex.split(rest):
            k, _, v = pair.partition("=")
            st["env"][k] = v
    elif word in ("ENTRYPOINT", "CMD"):
        st[word.lower()] = json.loads(rest)
    elif word == "HEALTHCHECK":
        toks = rest.split()
        i = next(i for i, t in enumerate(toks) if t.upper() == "CMD")
        st["healthcheck"] = json.loads(" ".join(toks[i + 1:]))

by_name = {s["name"]: s for s in stages}
runtime = stages[-1]

ignore = []
if os.path.exists(".dockerignore"):
    for raw in open(".dockerignore"):
        p = raw.strip()
        if p and not p.startswith("#") and not p.startswith("!"):
            ignore.append(p.rstrip("/"))

def ignored(path):
    path = os.path.normpath(path)
    for pat in ignore:
        pat = pat[3:] if pat.startswith("**/") else pat
        pieces = path.split(os.sep)
        for n in range(1, len(pieces) + 1):
            if fnmatch.fnmatch(os.sep.join(pieces[:n]), pat) or fnmatch.fnmatch(pieces[n - 1], pat):
                return pat
    return None

binary = os.environ.get("FACEPRINT_BIN", os.path.join(root, "target/release/faceprint-server"))

def local_of(stage, path):
    """A path inside a build stage, as the local checkout has it."""
    wd = by_name[stage]["workdir"].rstrip("/") + "/"
    if path.startswith(wd + "target/release/"):
        return binary if path.endswith("/faceprint-server") else os.path.join(root, path[len(wd):])
    return os.path.join(root, path[len(wd):]) if path.startswith(wd) else None

# --- 1. paths ----------------------------------------------------------------------------
checked = 0
for st in stages:
    for src_stage, sources in st["copies"]:
        for src in sources:
            checked += 1
            if src_stage is None:
                if not os.path.exists(src):
                    fail(f"stage {st['name']}: COPY {src}: no such path in the build context")
                elif ignored(src):
                    fail(f"stage {st['name']}: COPY {src}: excluded by .dockerignore ({ignored(src)})")
            else:
                if src_stage not in by_name:
                    fail(f"stage {st['name']}: COPY --from={src_stage}: no such stage")
                    continue
                local = local_of(src_stage, src)
                if local is None:
                    fail(f"stage {st['name']}: COPY --from={src_stage} {src}: outside the stage's WORKDIR")
                elif "/target/" in src and paths_only:
                    print(f"ok: COPY --from={src_stage} {src} (build output; not built in --paths-only)")
                elif not os.path.exists(local):
                    fail(f"stage {st['name']}: COPY --from={src_stage} {src}: {local} does not exist "
                         "(run cargo build --release --bin faceprint-server)")
print(f"checked {checked} COPY source(s) in {len(stages)} stage(s)")
if failures or paths_only:
    sys.exit(1 if failures else 0)

# --- 2. run the runtime stage's command ---------------------------------------------------
data = tempfile.mkdtemp(prefix="faceprint-docker-data-")
appdir = runtime["workdir"].rstrip("/")
port = os.environ.get("CHECK_PORT")
if not port:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])

def mapped(value):
    value = value.replace("/data", data)
    if appdir and appdir != "/":
        value = value.replace(appdir + "/", root + "/")
    return value

env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": data}
for k, v in runtime["env"].items():
    env[k] = mapped(v)
bind = env.get("FACEPRINT_SERVER__BIND", "")
if not bind.endswith(":8080"):
    fail(f"runtime ENV FACEPRINT_SERVER__BIND={bind!r}: expected to listen on port 8080")
    sys.exit(1)
env["FACEPRINT_SERVER__BIND"] = bind.rsplit(":", 1)[0] + ":" + port

def command(argv):
    exe = argv[0]
    if os.path.basename(exe) == "faceprint-server":
        exe = binary
    return [exe] + [mapped(a) for a in argv[1:]]

server_argv = command((runtime["entrypoint"] or []) + (runtime["cmd"] or []))
check_argv = command(runtime["healthcheck"]) if runtime["healthcheck"] else None
if check_argv is None:
    fail("the runtime stage has no HEALTHCHECK CMD")
    sys.exit(1)
refused = subprocess.run(server_argv, env=env, cwd=root, capture_output=True, text=True,
                         timeout=120)
if refused.returncode != 0 and "FACEPRINT_AUTH__ADMIN_KEYS" in refused.stderr:
    print("ok: without API keys the image refuses to start and says which variable to set")
else:
    fail(f"without API keys the server exited with {refused.returncode} and said: "
         f"{refused.stderr.strip()[-400:]!r}; expected a refusal naming FACEPRINT_AUTH__ADMIN_KEYS")
env["FACEPRINT_AUTH__ADMIN_KEYS"] = "check-dockerfile-key"
print("running:", " ".join(shlex.quote(a) for a in server_argv),
      f"(port {port}, /data -> {data}, FACEPRINT_AUTH__ADMIN_KEYS set)")
server = subprocess.Popen(server_argv, env=env, cwd=root)
try:
    deadline = time.time() + 120
    healthy = False
    while time.time() < deadline:
        if server.poll() is not None:
            fail(f"the server exited with status {server.returncode}")
            break
        done = subprocess.run(check_argv, env=env, cwd=root,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if done.returncode == 0:
            healthy = True
            break
        time.sleep(0.5)
    if healthy:
        print("ok: HEALTHCHECK", " ".join(runtime["healthcheck"]), "succeeded")
        db = os.path.join(data, "faceprint.db")
        if os.path.exists(db):
            print("ok: the SQLite database is on the /data volume")
        else:
            fail(f"no database at {db}")
    elif not failures:
        fail("the HEALTHCHECK did not succeed within 120 s")
finally:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    subprocess.run(["rm", "-rf", data])
sys.exit(1 if failures else 0)
PY
