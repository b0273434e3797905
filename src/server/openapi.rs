//! The OpenAPI 3.1 document, written by hand: eighteen routes do not justify a derive
//! framework's compile time. [`ROUTES`] lists them; tests check that each is described
//! here and served by the router (`tests/server_api.rs`).

use serde_json::{Value, json};

/// Every route the server serves, as `(method, OpenAPI path)`. The router is written
/// separately (`server::router`); a route added there belongs here too, and the
/// integration tests request every entry to check that it is served.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/enroll"),
    ("post", "/identify"),
    ("post", "/detect"),
    ("post", "/embed"),
    ("post", "/verify"),
    ("get", "/identities"),
    ("get", "/identities/{identity}"),
    ("delete", "/identities/{identity}"),
    ("delete", "/identities/{identity}/faces/{face_id}"),
    ("get", "/identities/{identity}/faces/{face_id}/image"),
    ("get", "/status"),
    ("get", "/galleries"),
    ("get", "/galleries/{gallery}"),
    ("put", "/galleries/{gallery}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

fn error_responses(codes: &[&str]) -> Value {
    let mut responses = serde_json::Map::new();
    for code in codes {
        responses.insert(
            (*code).to_owned(),
            json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
    }
    Value::Object(responses)
}

fn op(summary: &str, security: &str, ok: Value, errors: &[&str], body: Option<Value>) -> Value {
    let mut responses = error_responses(errors);
    if let Value::Object(map) = &mut responses {
        map.insert(
            "200".into(),
            json!({"description": "success", "content": {"application/json": {"schema": ok}}}),
        );
    }
    let mut operation = json!({ "summary": summary, "responses": responses });
    if security != "none" {
        operation["security"] = json!([{ "bearer": [] }, { "apiKey": [] }]);
        operation["x-role"] = json!(security);
    }
    if let Some(body) = body {
        operation["requestBody"] = json!({
            "required": true,
            "content": {
                "application/json": { "schema": body },
                "multipart/form-data": { "schema": { "type": "object", "description": "the same fields as text, images as file fields named `image`" } }
            }
        });
    }
    operation
}

fn param(name: &str, location: &str, schema: Value) -> Value {
    json!({"name": name, "in": location, "required": location == "path", "schema": schema})
}

/// The document served at `/openapi.json`.
pub fn document() -> Value {
    let b64 = json!({"type": "string", "contentEncoding": "base64"});
    let io = ["400", "401", "403", "413", "415", "422", "503"];
    let candidate = json!({"type": "object", "properties": {"identity": {"type": "string"}, "similarity": {"type": "number"}, "face_id": {"type": "integer"},
        "false_accept_rate": {"type": ["number", "null"], "description": "estimated fraction of strangers scoring at least this similarity against some identity of a gallery of this size (null: the model carries no impostor tail)"}}});
    let far_f = json!({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "description": "target false-accept rate: the threshold becomes the one at which at most this fraction of strangers match someone in a gallery of its current size (422 out_of_range otherwise)"});
    let gallery_item = json!({"type": "object", "properties": {"gallery": {"type": "string"}, "threshold": {"type": ["number", "null"]}, "far": {"type": ["number", "null"]}, "identities": {"type": "integer"}, "faces": {"type": "integer"},
        "current_threshold": {"type": "number", "description": "the threshold /identify uses now"}, "current_far": {"type": ["number", "null"], "description": "the target FAR it keeps; null for a threshold set outright"}}});
    let face_box = json!({"type": "object", "description": "a face in image pixels, largest faces first; score: the detector's face probability in [0, 1]",
        "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}, "width": {"type": "integer"}, "height": {"type": "integer"}, "score": {"type": "number"}}});
    let landmarks = json!({"type": "array", "minItems": 5, "maxItems": 5, "description": "left eye, right eye, nose, left and right mouth corners (as seen in the image), image pixels", "items": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}}});
    let box_or_null = json!({"oneOf": [face_box, {"type": "null"}], "description": "the face's box; null with detect=false"});
    let detect_f = json!({"type": "boolean", "description": "find faces first (default: server setting detect.enabled, true); false takes the image as one face crop, aligned on its landmarks when the model learned aligned faces"});
    let max_faces_f = json!({"type": "integer", "minimum": 1, "description": "faces reported and embedded per image, largest first (default detect.default_max_faces)"});
    let given_box = json!({"type": "object", "required": ["x", "y", "width", "height"], "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}, "width": {"type": "integer"}, "height": {"type": "integer"}, "score": {"type": "number"}}});
    let identify_face = json!({"type": "object", "properties": {"box": box_or_null, "embedded": {"type": "boolean"}, "match": {"oneOf": [candidate, {"type": "null"}]}, "candidates": {"type": "array", "items": candidate}}});
    let embed_face = json!({"type": "object", "properties": {"box": box_or_null, "embedded": {"type": "boolean"}, "embedding": {"type": ["array", "null"], "items": {"type": "number"}}}});
    let verify_face = json!({"type": "object", "properties": {"box": box_or_null, "embedded": {"type": "boolean"}, "same": {"type": ["boolean", "null"]}, "similarity": {"type": ["number", "null"]}}});
    let gallery_q = param(
        "gallery",
        "query",
        json!({"type": "string", "default": "default"}),
    );
    let identity_p = param("identity", "path", json!({"type": "string"}));
    let mut get_identity = op(
        "An identity with its faces",
        "admin",
        json!({"type": "object"}),
        &["400", "401", "403", "404"],
        None,
    );
    get_identity["parameters"] = json!([identity_p, gallery_q]);
    let mut delete_identity = op(
        "Delete an identity and its faces; they stop matching at once",
        "admin",
        json!({"type": "object"}),
        &["400", "401", "403", "404"],
        None,
    );
    delete_identity["parameters"] = json!([identity_p, gallery_q]);
    let mut delete_face = op(
        "Delete one face of an identity",
        "admin",
        json!({"type": "object"}),
        &["400", "401", "403", "404"],
        None,
    );
    delete_face["parameters"] = json!([
        identity_p,
        param("face_id", "path", json!({"type": "integer"})),
        gallery_q
    ]);
    let mut face_image = op(
        "A face's stored image (the aligned crop that was embedded) as a PNG thumbnail, at most 128 px a side",
        "admin",
        json!({"type": "string"}),
        &["400", "401", "403", "404"],
        None,
    );
    face_image["responses"]["200"] = json!({"description": "PNG thumbnail; 404 face_image_not_stored when database.store_images was off", "content": {"image/png": {"schema": {"type": "string", "contentMediaType": "image/png"}}}});
    face_image["parameters"] = delete_face["parameters"].clone();
    let gallery_status = json!({"type": "object", "properties": {"gallery": {"type": "string"}, "identities": {"type": "integer"}, "faces": {"type": "integer"}, "index": {"enum": ["exact", "hnsw"]}, "building": {"type": "boolean"}, "threshold": {"type": "number", "description": "what /identify uses here when the request sets none"}, "own_threshold": {"type": "boolean"}}});
    let status = op(
        "The model, each gallery's size, index and threshold, readiness, and the caller's role",
        "none",
        json!({"type": "object", "properties": {"model": {"type": "string"}, "dim": {"type": "integer"}, "ready": {"type": "boolean"}, "default_threshold": {"type": "number"}, "threshold_policy": {"enum": ["far_0_1pct", "far_1pct", "far_10pct", "fixed"]}, "galleries": {"type": "array", "items": gallery_status}, "keys_required": {"type": "boolean"}, "role": {"enum": ["admin", "query", "none"], "description": "what the key sent (if any) may do; admin on a server without keys"}}}),
        &[],
        None,
    );
    let mut list = op(
        "Identities of a gallery, by external id, paginated",
        "admin",
        json!({"type": "object", "properties": {"identities": {"type": "array"}, "next": {"type": ["string", "null"]}}}),
        &["400", "401", "403", "404"],
        None,
    );
    list["parameters"] = json!([
        gallery_q,
        param("after", "query", json!({"type": "string"})),
        param(
            "limit",
            "query",
            json!({"type": "integer", "minimum": 1, "maximum": 1000})
        )
    ]);
    let mut put_gallery = op(
        "Create a gallery or set its threshold or target FAR (the threshold wins; null: the server's default)",
        "admin",
        gallery_item.clone(),
        &["400", "401", "403", "422"],
        Some(
            json!({"type": "object", "properties": {"threshold": {"type": ["number", "null"]}, "far": {"oneOf": [far_f, {"type": "null"}]}}}),
        ),
    );
    put_gallery["parameters"] = json!([param("gallery", "path", json!({"type": "string"}))]);
    let gallery_item_list = gallery_item.clone();
    let mut get_gallery = op(
        "A gallery's size, settings and current threshold",
        "admin",
        gallery_item,
        &["400", "401", "403", "404"],
        None,
    );
    get_gallery["parameters"] = json!([param("gallery", "path", json!({"type": "string"}))]);
    json!({
        "openapi": "3.1.0",
        "info": {"title": "faceprint", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Enroll faces and identify them, open-set. Errors: {\"error\": {\"code\", \"message\"}}, on every route also 400 `api_key_in_query` (keys go in headers only), 414 `uri_too_long` (request target over 8 KiB) and 431 `headers_too_large` (over 16 KiB or 64 headers). A repeated JSON key or form field is a 400 naming it. The web page at / (and /assets/*) is served beside the API and not described here."},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}
            },
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}}
        },
        "paths": {
            "/enroll": {"post": op("Enroll face images under an identity (created if new)", "admin",
                json!({"type": "object", "properties": {"identity": {"type": "string"}, "gallery": {"type": "string"}, "created": {"type": "boolean"}, "face_ids": {"type": "array", "items": {"type": "integer"}}, "boxes": {"type": "array", "items": box_or_null}, "model": {"type": "string"}}}),
                &io, Some(json!({"type": "object", "required": ["identity", "images"], "description": "each image must show exactly one face large enough to embed (422 no_face / several_faces naming the image) unless `boxes` says where it is", "properties": {"identity": {"type": "string"}, "images": {"type": "array", "items": b64}, "gallery": {"type": "string"}, "metadata": {"type": "object"}, "detect": detect_f, "boxes": {"type": "array", "description": "one entry per image: the face's box, or null to detect it", "items": {"oneOf": [given_box, {"type": "null"}]}}}})))},
            "/detect": {"post": op("Where are the faces? Boxes, largest first", "query",
                json!({"type": "object", "properties": {"faces": {"type": "array", "items": {"type": "object", "properties": {"box": face_box, "landmarks": landmarks, "embeddable": {"type": "boolean", "description": "false below detector.min_embed_size: reported, not embedded"}}}}, "width": {"type": "integer"}, "height": {"type": "integer"}}}),
                &io, Some(json!({"type": "object", "required": ["image"], "properties": {"image": b64, "max_faces": max_faces_f}})))},
            "/identify": {"post": op("Who is this? The best identity at or above the threshold, or null", "query",
                json!({"type": "object", "description": "match/candidates/box: the largest embedded face; faces: every face. No face: match and box null, candidates and faces empty",
                    "properties": {"match": {"oneOf": [candidate, {"type": "null"}]}, "candidates": {"type": "array", "items": candidate}, "box": box_or_null, "faces": {"type": "array", "items": identify_face}, "threshold": {"type": "number"},
                        "far": {"type": ["number", "null"], "description": "the target FAR the threshold was derived from; null when a threshold was set outright"}, "gallery_size": {"type": "integer", "description": "identities in the gallery the threshold was computed for"}, "gallery": {"type": "string"}, "model": {"type": "string"}}}),
                &[&io[..], &["404"]].concat(), Some(json!({"type": "object", "required": ["image"], "description": "threshold: request threshold, else request far, else the gallery's threshold, else its far, else identify.default_threshold (by default identify.far = 0.01 for this gallery's size)",
                    "properties": {"image": b64, "top_k": {"type": "integer", "minimum": 1}, "threshold": {"type": "number"}, "far": far_f, "gallery": {"type": "string"}, "detect": detect_f, "max_faces": max_faces_f}})))},
            "/embed": {"post": op("The L2-normalised embedding of a face image", "query",
                json!({"type": "object", "description": "embedding/box: the largest embedded face (422 no_face without one); faces: every face",
                    "properties": {"embedding": {"type": "array", "items": {"type": "number"}}, "dim": {"type": "integer"}, "box": box_or_null, "faces": {"type": "array", "items": embed_face}, "model": {"type": "string"}}}),
                &io, Some(json!({"type": "object", "required": ["image"], "properties": {"image": b64, "detect": detect_f, "max_faces": max_faces_f}})))},
            "/verify": {"post": op("Are two faces (or a face and an identity) the same person?", "query",
                json!({"type": "object", "description": "the first image's largest embedded face (box) against the second image's (reference_box) or the identity; faces: every face of the first image. 422 no_face names an image without one",
                    "properties": {"same": {"type": "boolean"}, "similarity": {"type": "number"}, "threshold": {"type": "number"}, "box": box_or_null, "reference_box": face_box, "faces": {"type": "array", "items": verify_face}, "model": {"type": "string"}}}),
                &[&io[..], &["404"]].concat(), Some(json!({"type": "object", "properties": {"images": {"type": "array", "items": b64, "minItems": 1, "maxItems": 2}, "identity": {"type": "string"}, "gallery": {"type": "string"}, "threshold": {"type": "number"}, "detect": detect_f, "max_faces": max_faces_f}})))},
            "/identities": {"get": list},
            "/identities/{identity}": {"get": get_identity, "delete": delete_identity},
            "/identities/{identity}/faces/{face_id}": {"delete": delete_face},
            "/identities/{identity}/faces/{face_id}/image": {"get": face_image},
            "/status": {"get": status},
            "/galleries": {"get": op("Galleries with their sizes and thresholds", "admin", json!({"type": "object", "properties": {"galleries": {"type": "array", "items": gallery_item_list}}}), &["401", "403"], None)},
            "/galleries/{gallery}": {"get": get_gallery, "put": put_gallery},
            "/healthz": {"get": op("Liveness", "none", json!({"type": "object"}), &[], None)},
            "/readyz": {"get": op("Readiness: model loaded, indexes built, database reachable", "none", json!({"type": "object"}), &["503"], None)},
            "/metrics": {"get": op("Prometheus metrics (text format)", "none", json!({"type": "string"}), &[], None)},
            "/openapi.json": {"get": op("This document", "none", json!({"type": "object"}), &[], None)}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_described() {
        let doc = document();
        for (method, path) in ROUTES {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} missing"
            );
        }
    }
}
