// faceprint's web page: plain DOM, no framework, same-origin requests only.
// Every name or message that came from the server or the user is put on the page with
// textContent (never innerHTML), so a name like <img src=x onerror=...> stays text.
"use strict";

const KEY_STORAGE = "faceprint.key";
const SVG = "http://www.w3.org/2000/svg";
const LANDMARK_NAMES = ["left eye", "right eye", "nose", "left mouth corner", "right mouth corner"];

const state = {
  status: null, // the last GET /status answer
  enroll: [], // per chosen photo: {file, url, faces, picked, error}
  camera: null, // the webcam's MediaStream while it is open
};

// ---------------------------------------------------------------- small helpers

const $ = (id) => document.getElementById(id);

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

function say(id, text, kind) {
  const node = $(id);
  node.textContent = text || "";
  node.className = "message" + (kind ? " " + kind : "");
}

const similarity = (s) => s.toFixed(3);
const date = (ms) => new Date(ms).toLocaleString();

function getKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || "";
  } catch (_) {
    return "";
  }
}

function setKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch (_) {
    // Storage may be off: the key then lasts until the page is reloaded.
  }
}

// ---------------------------------------------------------------- the API

/** An API failure, in words for people. */
class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The server's error codes, said for people (the server's message follows). */
const WORDS = {
  missing_api_key: "This server needs an API key.",
  invalid_api_key: "The server does not accept this API key.",
  forbidden: "This key may only identify: enrolling, listing and deleting need an admin key.",
  no_face: "No face was found in a photo (or only faces too small to use).",
  several_faces: "A photo shows several faces: click the one to use.",
  undecodable_image: "A file is not an image the server can read.",
  image_too_large: "A photo is too large for the server.",
  payload_too_large: "The photos together are larger than the server accepts.",
  unsupported_media_type: "The server did not understand the request.",
  timeout: "The server took too long to answer; try a smaller photo.",
  not_ready: "The server is starting or has lost its database; try again shortly.",
  identity_not_found: "That person is no longer enrolled.",
  face_not_found: "That face is no longer enrolled.",
  face_image_not_stored: "This server did not keep the photo of that face.",
  gallery_not_found: "There is no such gallery yet.",
  invalid_field: "The server refused a value.",
  internal: "The server failed; its log says why.",
};

function inWords(error) {
  if (!(error instanceof ApiFailure)) return "The server could not be reached: " + error.message;
  const words = WORDS[error.code] || "The server refused the request.";
  return error.message ? words + " (" + error.message + ")" : words;
}

/** fetch on this origin with the key; JSON answers parsed, errors thrown as ApiFailure. */
async function api(path, options) {
  const init = Object.assign({ credentials: "same-origin" }, options || {});
  init.headers = Object.assign({}, init.headers || {});
  const key = getKey();
  if (key) init.headers["Authorization"] = "Bearer " + key;
  const response = await fetch(path, init);
  const type = response.headers.get("content-type") || "";
  if (!response.ok) {
    let code = "http_" + response.status;
    let message = "";
    if (type.startsWith("application/json")) {
      const body = await response.json().catch(() => null);
      if (body && body.error) {
        code = body.error.code;
        message = body.error.message;
      }
    }
    const failure = new ApiFailure(response.status, code, message);
    if (response.status === 401) askForKey(inWords(failure));
    throw failure;
  }
  return type.startsWith("application/json") ? response.json() : response.blob();
}

const enc = encodeURIComponent;

// ---------------------------------------------------------------- views and keys

const VIEWS = ["identify", "enroll", "people", "status", "key"];

function show(view) {
  for (const name of VIEWS) $("view-" + name).hidden = name !== view;
  for (const tab of document.querySelectorAll(".tab")) {
    if (tab.dataset.view === view) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  if (view === "people") refreshStatus().then(loadPeople, () => {});
  if (view === "status") loadStatus();
  if (view === "key") $("key-input").focus();
}

function askForKey(reason) {
  document.body.classList.add("keys-required");
  say("key-message", reason, "error");
  show("key");
}

/** Ask the server who we are; decides which tabs and actions the key may see. */
async function refreshStatus() {
  const status = await api("/status");
  state.status = status;
  document.body.classList.toggle("keys-required", status.keys_required);
  document.body.classList.toggle("query-only", status.role !== "admin");
  fillGalleries(status.galleries.map((g) => g.gallery));
  if (status.role === "none") {
    const reason = getKey() ? WORDS.invalid_api_key : WORDS.missing_api_key;
    askForKey(reason + " Enter one to go on.");
  }
  return status;
}

function fillGalleries(names) {
  if (!names.includes("default")) names.unshift("default");
  for (const select of document.querySelectorAll(".gallery-select")) {
    const chosen = select.value || "default";
    select.replaceChildren(...names.map((name) => el("option", { value: name, text: name })));
    select.value = names.includes(chosen) ? chosen : "default";
  }
  $("gallery-names").replaceChildren(...names.map((name) => el("option", { value: name })));
}

async function saveKey(event) {
  event.preventDefault();
  const key = $("key-input").value.trim();
  if (!key) return;
  setKey(key);
  say("key-message", "Checking the key…");
  try {
    const status = await refreshStatus();
    if (status.role === "none") {
      setKey("");
      $("key-input").value = "";
      return;
    }
    $("key-input").value = "";
    const role = status.role === "admin" ? "an admin key: every action" : "a query key: identify only";
    say("key-message", "Key accepted — " + role + ".", "ok");
    $("notice").hidden = true;
  } catch (error) {
    setKey("");
    say("key-message", inWords(error), "error");
  }
}

function forgetKey() {
  setKey("");
  state.status = null;
  document.body.classList.remove("query-only");
  say("key-message", "The key is forgotten.", "ok");
  refreshStatus().catch(() => {});
}

// ---------------------------------------------------------------- drawing faces

/**
 * The photo with an SVG layer in image pixels: one rect per face (with its landmarks).
 * `onPick(index)` is called when a box is clicked.
 */
function photoWithBoxes(url, width, height, faces, onPick) {
  const layer = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" });
  faces.forEach((face, index) => {
    if (!face.box) return;
    const rect = svg("rect", {
      x: face.box.x, y: face.box.y, width: face.box.width, height: face.box.height,
      class: face.kind || "", "data-face": index,
    });
    const title = svg("title", {});
    title.textContent = face.label || "face " + (index + 1);
    rect.append(title);
    rect.addEventListener("click", () => onPick(index));
    layer.append(rect);
    const radius = Math.max(1.5, face.box.width / 40);
    (face.landmarks || []).forEach((point, n) => {
      const dot = svg("circle", { cx: point.x, cy: point.y, r: radius });
      const name = svg("title", {});
      name.textContent = LANDMARK_NAMES[n];
      dot.append(name);
      layer.append(dot);
    });
  });
  return el("div", { class: "photo" }, el("img", { src: url, alt: "the photo" }), layer);
}

/** Natural size of an image file, from the browser's own decoder. */
function imageSize(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve({ width: image.naturalWidth, height: image.naturalHeight });
    image.onerror = () => reject(new Error("the browser cannot show this file as an image"));
    image.src = url;
  });
}

// ---------------------------------------------------------------- identify

function thresholdWords(answer) {
  const status = state.status;
  let source = "the server's default";
  if (status) {
    const gallery = status.galleries.find((g) => g.gallery === answer.gallery);
    if (gallery && gallery.own_threshold) source = "this gallery's own threshold";
    else if (status.threshold_policy === "fixed") source = "the server's fixed threshold";
    else {
      // A model with an impostor tail rates every candidate; its threshold then follows
      // the gallery's size. Without one the server uses the model's fixed value.
      const rated = (answer.faces || [answer]).some((f) => (f.candidates || []).some((c) => c.false_accept_rate != null));
      const percent = typeof answer.far === "number" ? String(+(answer.far * 100).toPrecision(2)) + "%" : null;
      const far = { far_0_1pct: "0.1%", far_1pct: "1%", far_10pct: "10%" }[status.threshold_policy] || percent;
      if (rated && percent && typeof answer.gallery_size === "number")
        source = "at most " + percent + " of strangers would match someone in this gallery of " + answer.gallery_size;
      else source = "the model's threshold for a false-accept rate of " + far;
    }
  }
  return "Threshold " + similarity(answer.threshold) + " (" + source + "): a face is named only at or above it.";
}

async function identify(file) {
  say("identify-message", "Looking for faces…");
  $("identify-result").hidden = true;
  const url = URL.createObjectURL(file);
  const form = new FormData();
  form.append("image", file, file.name || "photo");
  form.append("gallery", $("identify-gallery").value || "default");
  try {
    const [size, answer] = await Promise.all([imageSize(url), api("/identify", { method: "POST", body: form })]);
    showIdentified(url, size, answer);
  } catch (error) {
    URL.revokeObjectURL(url);
    say("identify-message", error instanceof ApiFailure ? inWords(error) : error.message, "error");
  }
}

function showIdentified(url, size, answer) {
  const faces = answer.faces.map((face, index) => {
    const best = face.match;
    let kind = best ? "match" : "unknown";
    let label = best ? best.identity : "unknown";
    if (!face.embedded) {
      kind = "small";
      label = "too small to recognise";
    }
    return { box: face.box, landmarks: face.landmarks, kind, label, face, index };
  });
  const pick = (index) => selectFace(faces, index);
  $("identify-photo").replaceWith(
    Object.assign(photoWithBoxes(url, size.width, size.height, faces, pick), { id: "identify-photo" })
  );
  $("identify-threshold").textContent = thresholdWords(answer);
  const list = $("identify-faces");
  list.replaceChildren(
    ...faces.map((f, index) => {
      const name = el("span", { class: "face-name " + f.kind, text: f.label });
      const detail = f.face.match
        ? " — similarity " + similarity(f.face.match.similarity)
        : f.face.candidates.length
          ? " — closest " + f.face.candidates[0].identity + " at " + similarity(f.face.candidates[0].similarity)
          : "";
      return el("li", { "data-face": index, onclick: () => pick(index) }, name, detail);
    })
  );
  $("identify-candidates").hidden = true;
  say("identify-message", faces.length ? faces.length + " face(s) found. Click a face for its candidates." : "No face found in this photo.", faces.length ? "" : "error");
  $("identify-result").hidden = false;
}

function selectFace(faces, index) {
  for (const node of document.querySelectorAll("#identify-result [data-face]")) {
    node.classList.toggle("selected", Number(node.dataset.face) === index);
  }
  const face = faces[index].face;
  $("identify-candidates-title").textContent = "Candidates for face " + (index + 1);
  const rows = face.candidates.map((c) =>
    el("tr", {}, el("td", { text: c.identity }), el("td", { text: similarity(c.similarity) }))
  );
  if (!rows.length) rows.push(el("tr", {}, el("td", { text: face.embedded ? "nobody enrolled" : "not recognised: too small" }), el("td", {})));
  $("identify-candidates").querySelector("tbody").replaceChildren(...rows);
  $("identify-candidates").hidden = false;
}

async function openCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    say("identify-message", "This browser offers no camera here (cameras need localhost or HTTPS).", "error");
    return;
  }
  try {
    state.camera = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    $("identify-video").srcObject = state.camera;
    $("identify-webcam").hidden = false;
    say("identify-message", "");
  } catch (error) {
    say("identify-message", "The camera could not be opened: " + error.message, "error");
  }
}

function closeCamera() {
  if (state.camera) state.camera.getTracks().forEach((track) => track.stop());
  state.camera = null;
  $("identify-video").srcObject = null;
  $("identify-webcam").hidden = true;
}

function capture() {
  const video = $("identify-video");
  const canvas = el("canvas", {});
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  canvas.toBlob((blob) => {
    closeCamera();
    if (blob) identify(new File([blob], "camera.png", { type: "image/png" }));
  }, "image/png");
}

// ---------------------------------------------------------------- enroll

async function choosePhotos(files) {
  for (const photo of state.enroll) URL.revokeObjectURL(photo.url);
  state.enroll = Array.from(files).map((file) => ({ file, url: URL.createObjectURL(file), faces: null, picked: null, error: null }));
  say("enroll-message", state.enroll.length ? "Looking for faces…" : "");
  renderEnrollPhotos();
  await Promise.all(
    state.enroll.map(async (photo) => {
      const form = new FormData();
      form.append("image", photo.file, photo.file.name || "photo");
      try {
        const [size, found] = await Promise.all([imageSize(photo.url), api("/detect", { method: "POST", body: form })]);
        photo.size = size;
        photo.faces = found.faces.filter((f) => f.embeddable);
        photo.small = found.faces.length - photo.faces.length;
        if (photo.faces.length === 1) photo.picked = 0;
      } catch (error) {
        photo.error = error instanceof ApiFailure ? inWords(error) : error.message;
      }
    })
  );
  say("enroll-message", "");
  renderEnrollPhotos();
}

function enrollCaption(photo) {
  if (photo.error) return [photo.error, "error"];
  if (!photo.faces) return ["Looking for faces…", ""];
  const small = photo.small ? " (" + photo.small + " too small to use)" : "";
  if (!photo.faces.length) return ["No face found in this photo" + small + ".", "error"];
  if (photo.faces.length === 1) return ["One face: it will be enrolled" + small + ".", ""];
  if (photo.picked === null) return [photo.faces.length + " faces: click the one to enroll.", "error"];
  return ["Face " + (photo.picked + 1) + " of " + photo.faces.length + " picked (click another to change).", ""];
}

function renderEnrollPhotos() {
  $("enroll-photos").replaceChildren(
    ...state.enroll.map((photo, n) => {
      const [caption, kind] = enrollCaption(photo);
      let picture;
      if (photo.size && photo.faces) {
        const faces = photo.faces.map((f, index) => ({
          box: f.box,
          landmarks: f.landmarks,
          kind: photo.faces.length > 1 ? (index === photo.picked ? "picked" : "pickable") : "picked",
          label: "face " + (index + 1),
        }));
        picture = photoWithBoxes(photo.url, photo.size.width, photo.size.height, faces, (index) => {
          photo.picked = index;
          renderEnrollPhotos();
        });
      } else {
        picture = el("div", { class: "photo" }, el("img", { src: photo.url, alt: "photo " + (n + 1) }));
      }
      return el("figure", { "data-photo": n }, picture, el("figcaption", { class: kind, text: caption }));
    })
  );
}

async function enroll(event) {
  event.preventDefault();
  const name = $("enroll-name").value.trim();
  if (!name) {
    say("enroll-message", "Give the person a name.", "error");
    return;
  }
  if (!state.enroll.length) {
    say("enroll-message", "Choose at least one photo of the person.", "error");
    return;
  }
  const unready = state.enroll.findIndex((p) => !p.faces || p.error || p.picked === null);
  if (unready >= 0) {
    const [caption] = enrollCaption(state.enroll[unready]);
    say("enroll-message", "Photo " + (unready + 1) + ": " + caption, "error");
    return;
  }
  const form = new FormData();
  form.append("identity", name);
  form.append("gallery", $("enroll-gallery").value.trim() || "default");
  const boxes = state.enroll.map((p) => (p.faces.length > 1 ? p.faces[p.picked].box : null));
  if (boxes.some((b) => b !== null)) form.append("boxes", JSON.stringify(boxes));
  for (const photo of state.enroll) form.append("image", photo.file, photo.file.name || "photo");
  $("enroll-submit").disabled = true;
  say("enroll-message", "Enrolling…");
  try {
    const done = await api("/enroll", { method: "POST", body: form });
    const what = done.created ? "Enrolled " : "Added to ";
    say("enroll-message", what + done.identity + ": " + done.face_ids.length + " face(s) in gallery " + done.gallery + ".", "ok");
    $("enroll-files").value = "";
    state.enroll = [];
    renderEnrollPhotos();
    refreshStatus().catch(() => {});
  } catch (error) {
    say("enroll-message", inWords(error), "error");
  } finally {
    $("enroll-submit").disabled = false;
  }
}

// ---------------------------------------------------------------- people

let peopleLoad = 0;

async function loadPeople() {
  const load = ++peopleLoad;
  const gallery = $("people-gallery").value || "default";
  const query = $("people-search").value.trim().toLowerCase();
  const known = state.status && state.status.galleries.some((g) => g.gallery === gallery);
  if (!known) {
    $("people-list").replaceChildren();
    say("people-message", "Nobody is enrolled in gallery " + gallery + " yet.");
    return;
  }
  say("people-message", "Loading…");
  const everyone = [];
  try {
    let after = null;
    do {
      const page = await api("/identities?gallery=" + enc(gallery) + "&limit=1000" + (after === null ? "" : "&after=" + enc(after)));
      everyone.push(...page.identities);
      after = page.next;
    } while (after !== null && load === peopleLoad);
  } catch (error) {
    if (load !== peopleLoad) return;
    $("people-list").replaceChildren();
    say("people-message", inWords(error), "error");
    return;
  }
  if (load !== peopleLoad) return;
  const shown = everyone.filter((p) => !query || p.identity.toLowerCase().includes(query));
  say("people-message", shown.length + " of " + everyone.length + " people" + (query ? " match" : "") + ".");
  $("people-list").replaceChildren(...shown.map((person) => personCard(gallery, person)));
}

function confirmInPlace(container, question, action) {
  const previous = Array.from(container.childNodes);
  const restore = () => container.replaceChildren(...previous);
  container.replaceChildren(
    el("span", { text: question }),
    el("button", { type: "button", class: "danger confirm-yes", onclick: action }, "Delete"),
    el("button", { type: "button", class: "secondary confirm-no", onclick: restore }, "Cancel")
  );
}

function personCard(gallery, person) {
  const thumbs = el("div", { class: "thumbs" });
  const actions = el("div", { class: "confirm" });
  const card = el(
    "li",
    { class: "person", "data-identity": person.identity },
    el("h3", { class: "person-name", text: person.identity }),
    el("p", { class: "meta", text: person.faces + " face(s), enrolled " + date(person.created_at) }),
    thumbs,
    actions
  );
  const path = "/identities/" + enc(person.identity);
  const where = "?gallery=" + enc(gallery);
  actions.append(
    el("button", {
      type: "button", class: "danger delete-person",
      onclick: () => confirmInPlace(actions, "Delete " + person.identity + " and every face?", async () => {
        try {
          await api(path + where, { method: "DELETE" });
          say("people-message", person.identity + " was deleted.", "ok");
          card.remove();
          refreshStatus().catch(() => {});
        } catch (error) {
          say("people-message", inWords(error), "error");
        }
      }),
    }, "Delete person")
  );
  api(path + where)
    .then((detail) => {
      for (const face of detail.faces) thumbs.append(faceThumb(path, where, face, card));
    })
    .catch((error) => thumbs.append(el("span", { class: "message error", text: inWords(error) })));
  return card;
}

function faceThumb(path, where, face, card) {
  const facePath = path + "/faces/" + face.id;
  const holder = el("div", { class: "thumb", "data-face-id": face.id });
  const image = el("img", { alt: "face " + face.id });
  if (face.has_image) {
    api(facePath + "/image" + where)
      .then((blob) => {
        const url = URL.createObjectURL(blob);
        image.addEventListener("load", () => URL.revokeObjectURL(url), { once: true });
        image.src = url;
      })
      .catch(() => image.setAttribute("alt", "no image"));
  }
  const controls = el("div", { class: "confirm" });
  controls.append(
    el("button", {
      type: "button", class: "secondary delete-face",
      onclick: () => confirmInPlace(controls, "Delete this face?", async () => {
        try {
          await api(facePath + where, { method: "DELETE" });
          holder.remove();
          const left = card.querySelectorAll(".thumb").length;
          card.querySelector(".meta").textContent = left + " face(s) left";
        } catch (error) {
          say("people-message", inWords(error), "error");
        }
      }),
    }, "Delete")
  );
  holder.append(image, el("span", { text: new Date(face.created_at).toLocaleDateString() }), controls);
  return holder;
}

// ---------------------------------------------------------------- status

async function loadStatus() {
  say("status-message", "Loading…");
  try {
    const status = await refreshStatus();
    const far = { far_0_1pct: "model's FAR 0.1% value", far_1pct: "model's FAR 1% value", far_10pct: "model's FAR 10% value", fixed: "fixed", gallery: "for each gallery's size at the server's false-accept rate" };
    const rows = [
      ["Model", status.model + " (" + status.dim + "-d embeddings)"],
      ["Ready", status.ready ? "yes" : "no: indexes building or database lost"],
      ["Default threshold", similarity(status.default_threshold) + " (" + far[status.threshold_policy] + ")"],
      ["API keys", status.keys_required ? "required; this key: " + status.role : "not required (open server)"],
    ];
    $("status-summary").replaceChildren(...rows.flatMap(([term, value]) => [el("dt", { text: term }), el("dd", { text: value })]));
    const galleries = status.galleries.map((g) =>
      el("tr", {},
        el("td", { text: g.gallery }),
        el("td", { text: String(g.identities) }),
        el("td", { text: String(g.faces) }),
        el("td", { text: g.index + (g.building ? " (HNSW building)" : "") }),
        el("td", { text: similarity(g.threshold) + (g.own_threshold ? " (own)" : "") }))
    );
    if (!galleries.length) galleries.push(el("tr", {}, el("td", { text: "no gallery yet", colspan: "5" })));
    $("status-galleries").querySelector("tbody").replaceChildren(...galleries);
    say("status-message", "");
  } catch (error) {
    say("status-message", inWords(error), "error");
  }
}

// ---------------------------------------------------------------- wiring

function dropTarget(label, onFiles) {
  label.addEventListener("dragover", (event) => {
    event.preventDefault();
    label.classList.add("over");
  });
  label.addEventListener("dragleave", () => label.classList.remove("over"));
  label.addEventListener("drop", (event) => {
    event.preventDefault();
    label.classList.remove("over");
    if (event.dataTransfer && event.dataTransfer.files.length) onFiles(event.dataTransfer.files);
  });
}

function start() {
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => show(tab.dataset.view));
  $("key-form").addEventListener("submit", saveKey);
  $("key-forget").addEventListener("click", forgetKey);
  $("identify-file").addEventListener("change", (event) => {
    if (event.target.files.length) identify(event.target.files[0]);
  });
  dropTarget($("identify-drop"), (files) => identify(files[0]));
  $("identify-camera").addEventListener("click", openCamera);
  $("identify-camera-stop").addEventListener("click", closeCamera);
  $("identify-capture").addEventListener("click", capture);
  $("enroll-files").addEventListener("change", (event) => choosePhotos(event.target.files));
  $("enroll-form").addEventListener("submit", enroll);
  $("people-gallery").addEventListener("change", loadPeople);
  let typing = null;
  $("people-search").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(loadPeople, 200);
  });
  fillGalleries([]);
  refreshStatus()
    .then(() => document.body.setAttribute("data-ready", "true"))
    .catch((error) => {
      document.body.setAttribute("data-ready", "true");
      $("notice").textContent = inWords(error);
      $("notice").hidden = false;
    });
}

document.addEventListener("DOMContentLoaded", start);
