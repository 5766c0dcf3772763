//! Checks the shared test harness itself, so a broken environment shows up
//! here rather than as confusing failures in the real tests.

use super::{moto, pg};

#[tokio::test]
async fn fresh_db_accepts_admin_password_only() {
    let db = pg().fresh_db().await;
    let client = db.client().await;
    let name: String = client.query_one("SELECT current_database()", &[]).await.unwrap().get(0);
    assert_eq!(name, db.name);

    let wrong = pg().url("postgres", "not-the-password", &db.name);
    let err = tokio_postgres::connect(&wrong, tokio_postgres::NoTls)
        .await
        .err()
        .expect("a wrong password must be rejected");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD),
        "unexpected error: {err:?}"
    );
}

#[tokio::test]
async fn fresh_dbs_are_distinct() {
    let a = pg().fresh_db().await;
    let b = pg().fresh_db().await;
    assert_ne!(a.name, b.name);
    a.client().await.batch_execute("CREATE TABLE only_in_a (id int)").await.unwrap();
    assert!(a.table_exists("public.only_in_a").await);
    assert!(!b.table_exists("public.only_in_a").await);
}

#[tokio::test]
async fn create_role_gives_working_login() {
    let db = pg().fresh_db().await;
    let url = db
        .create_role("app", "s3cret pass/word", &["GRANT CREATE ON SCHEMA public TO {role}"])
        .await;
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("role login");
    tokio::spawn(conn);
    let who: String = client.query_one("SELECT current_user::text", &[]).await.unwrap().get(0);
    assert_eq!(who, db.role_name("app"));
    // The grant ran: the role can create in public (not the default since PG 15).
    client.batch_execute("CREATE TABLE made_by_app (id int)").await.unwrap();
    assert!(db.table_exists("public.made_by_app").await);
}

#[tokio::test]
async fn advisory_locks_are_counted_per_database() {
    let db = pg().fresh_db().await;
    let other = pg().fresh_db().await;
    assert_eq!(db.advisory_locks().await, 0);
    let holder = db.client().await;
    holder.batch_execute("SELECT pg_advisory_lock(42)").await.unwrap();
    assert_eq!(db.advisory_locks().await, 1);
    assert_eq!(other.advisory_locks().await, 0);
    holder.batch_execute("SELECT pg_advisory_unlock(42)").await.unwrap();
    assert_eq!(db.advisory_locks().await, 0);
}

#[test]
fn moto_answers_http() {
    let (status, _body) = moto().http_get("/").expect("moto should answer HTTP");
    assert!((200..500).contains(&status), "status {status}");
    assert!(moto().endpoint_url().starts_with("http://127.0.0.1:"));
}

#[test]
fn cli_binary_exists() {
    let cmd = super::cli();
    assert!(std::path::Path::new(cmd.get_program()).exists());
}

#[test]
fn copy_fixture_copies_a_folder_tree() {
    let copy = super::copy_fixture("src");
    assert!(copy.path().join("lib.rs").is_file());
    assert!(copy.path().join("bin/wishlist-migrate.rs").is_file());
}
