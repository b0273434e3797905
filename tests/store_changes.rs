//! The change log on PostgreSQL: a follower that reads by transaction id against the
//! oldest running transaction sees a row whose transaction commits after a later one —
//! the row a follower polling `id > last` would miss for good.

mod support;

use faceprint::store::Store;
use sqlx::{Connection, PgConnection, Row};
use support::db::TestDb;

/// Begin a transaction on its own connection and append one change row; its id.
async fn open_change(url: &str) -> (PgConnection, i64) {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    sqlx::raw_sql("BEGIN")
        .execute(&mut conn)
        .await
        .expect("begin");
    let row = sqlx::query(
        "INSERT INTO changes (kind, gallery_id, origin, created_at) \
         VALUES ('gallery_changed', 1, 'test', 0) RETURNING id",
    )
    .fetch_one(&mut conn)
    .await
    .expect("insert a change");
    (conn, row.get("id"))
}

/// The ids a follower at `cursor` reads.
async fn ids_since(store: &Store, cursor: i64) -> Vec<i64> {
    let rows = store.change_ids_since(cursor).await.expect("read");
    rows.into_iter().map(|(id, _)| id).collect()
}

async fn commit(mut conn: PgConnection) {
    sqlx::raw_sql("COMMIT")
        .execute(&mut conn)
        .await
        .expect("commit");
    conn.close().await.ok();
}

needs_postgres! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_that_commits_after_a_later_one_is_still_read() {
    let db = TestDb::postgres().await;
    let store = Store::connect(&db.url, 2).await.expect("connect");
    let mut cursor = store.change_xmin().await.expect("xmin");

    let (slow, first) = open_change(&db.url).await;
    let (fast, second) = open_change(&db.url).await;
    assert!(first < second, "identity values in order of insertion");
    commit(fast).await;

    // One follower step: xmin before the read, then every row at or above the cursor.
    let next = store.change_xmin().await.expect("xmin");
    let read = ids_since(&store, cursor).await;
    assert_eq!(read, [second], "only the committed row is visible");
    cursor = next;

    // The earlier row commits now: polling `id > second` would never see it.
    commit(slow).await;
    let read = ids_since(&store, cursor).await;
    assert!(read.contains(&first), "the late row is read: {read:?}");
    store.close().await;
}
}
