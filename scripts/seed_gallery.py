#!/usr/bin/env python3
"""Fill the `default` gallery of a migrated faceprint SQLite database with N synthetic
faces (one per identity): seeded random unit vectors of the loaded model's dimension,
tagged with its version, so the server starts on them as if they had been enrolled.

usage: seed_gallery.py DB_PATH N DIM MODEL_VERSION [SEED]
"""
import sqlite3
import sys
import time

import numpy as np


def main() -> None:
    path, n, dim, version = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    seed = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    rng = np.random.default_rng(seed)
    now = int(time.time() * 1000)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(
        "INSERT INTO galleries (name, threshold, created_at) VALUES ('default', NULL, ?) "
        "ON CONFLICT (name) DO NOTHING",
        (now,),
    )
    (gallery,) = db.execute("SELECT id FROM galleries WHERE name = 'default'").fetchone()
    batch = 10_000
    for start in range(0, n, batch):
        count = min(batch, n - start)
        vectors = rng.standard_normal((count, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for i in range(count):
            cursor = db.execute(
                "INSERT INTO identities (gallery_id, external_id, metadata, created_at) "
                "VALUES (?, ?, NULL, ?)",
                (gallery, f"synthetic-{start + i}", now),
            )
            db.execute(
                "INSERT INTO faces (identity_id, embedding, model_version, image_sha256, "
                "image, created_at) VALUES (?, ?, ?, '', NULL, ?)",
                (cursor.lastrowid, vectors[i].astype("<f4").tobytes(), version, now),
            )
        db.commit()
    db.close()


if __name__ == "__main__":
    main()
