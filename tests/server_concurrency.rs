//! Many clients at once, and a crash in the middle of enrollments: the store keeps every
//! acknowledged enrollment and never half of one.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use support::app::{TestApp, json_of};
use support::db::TestDb;
use support::fixtures::{b64, face};
use support::process::ServerProcess;
use tokio::sync::Mutex;

const FIXTURE_PEOPLE: [&str; 4] = ["s1", "s2", "s3", "s4"];

async fn eight_concurrent_clients_enrolling_and_identifying_see_no_errors(db: TestDb) {
    let app = Arc::new(TestApp::spawn(db).await);
    let mut clients = Vec::new();
    for client in 0..8 {
        let app = Arc::clone(&app);
        clients.push(tokio::spawn(async move {
            let who = FIXTURE_PEOPLE[client % FIXTURE_PEOPLE.len()];
            let identity = format!("client-{client}");
            let (status, body) =
                json_of(app.enroll(&identity, &[face(who, 1), face(who, 2)]).await).await;
            assert_eq!(status, 201, "{identity} enroll: {body}");
            for round in 0..5 {
                let (status, body) = json_of(app.identify(&face(who, 1)).await).await;
                assert_eq!(status, 200, "{identity} identify {round}: {body}");
                // Clients sharing a fixture person enrolled the same images; either may match.
                let matched = body["match"]["identity"]
                    .as_str()
                    .unwrap_or("(none)")
                    .to_owned();
                let same_person = (0..8)
                    .filter(|c| FIXTURE_PEOPLE[c % FIXTURE_PEOPLE.len()] == who)
                    .any(|c| matched == format!("client-{c}"));
                assert!(
                    same_person || round == 0 && body["match"].is_null(),
                    "{identity}: {body}"
                );
            }
        }));
    }
    for client in clients {
        client.await.expect("client finished without panicking");
    }
    let (_, list) = json_of(app.list_identities("").await).await;
    assert_eq!(
        list["identities"].as_array().map(Vec::len),
        Some(8),
        "{list}"
    );
}
on_both_backends!(
    eight_concurrent_clients_enrolling_and_identifying_see_no_errors,
    super::eight_concurrent_clients_enrolling_and_identifying_see_no_errors
);

async fn a_server_killed_mid_enrollment_keeps_every_acknowledged_enrollment_and_no_half_one(
    db: TestDb,
) {
    let mut server = ServerProcess::start(&db).await;
    let acknowledged: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let mut writers = Vec::new();
    for (writer, who) in FIXTURE_PEOPLE.into_iter().enumerate() {
        let (client, base, acknowledged) = (
            client.clone(),
            server.base.clone(),
            Arc::clone(&acknowledged),
        );
        writers.push(tokio::spawn(async move {
            let images = [b64(&face(who, 1)), b64(&face(who, 2)), b64(&face(who, 3))];
            // Bounded: the kill below ends the loop long before this.
            for i in 0..500 {
                let identity = format!("w{writer}-{i}");
                let sent = client
                    .post(format!("{base}/enroll"))
                    .json(&json!({"identity": identity, "images": images}))
                    .send()
                    .await;
                let Ok(response) = sent else { return };
                if response.status().as_u16() != 201 {
                    return;
                }
                let Ok(body) = response.json::<Value>().await else {
                    return;
                };
                acknowledged
                    .lock()
                    .await
                    .push((identity, body["face_ids"].clone()));
            }
        }));
    }
    // Kill once enough enrollments were acknowledged, with more in flight.
    for _ in 0..3000 {
        if acknowledged.lock().await.len() >= 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill();
    for writer in writers {
        writer.await.expect("writer task");
    }
    let acknowledged = acknowledged.lock().await.clone();
    assert!(
        acknowledged.len() >= 20,
        "only {} enrollments before the kill",
        acknowledged.len()
    );

    let server = ServerProcess::start(&db).await;
    for (identity, face_ids) in &acknowledged {
        let response = client
            .get(format!("{}/identities/{identity}", server.base))
            .send()
            .await
            .expect("get identity");
        let (status, body) = json_of(response).await;
        assert_eq!(status, 200, "acknowledged {identity} lost: {body}");
        let stored: Vec<_> = body["faces"]
            .as_array()
            .expect("faces")
            .iter()
            .map(|f| f["id"].clone())
            .collect();
        assert_eq!(&Value::Array(stored), face_ids, "{identity}");
    }
    let response = client
        .get(format!("{}/identities?limit=1000", server.base))
        .send()
        .await
        .expect("list");
    let (_, list) = json_of(response).await;
    for identity in list["identities"].as_array().expect("identities") {
        assert_eq!(identity["faces"], 3, "half-enrolled identity: {identity}");
    }
}
on_both_backends!(
    a_server_killed_mid_enrollment_keeps_every_acknowledged_enrollment_and_no_half_one,
    super::a_server_killed_mid_enrollment_keeps_every_acknowledged_enrollment_and_no_half_one
);
