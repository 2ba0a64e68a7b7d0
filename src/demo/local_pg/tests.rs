//! The throwaway cluster: private, reachable only as documented, and gone afterwards.

use super::*;

/// Connects to `url`, spawning the connection driver.
async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

#[tokio::test]
async fn starts_accepts_the_password_and_refuses_a_wrong_one() {
    let pg = LocalPg::start().expect("start a throwaway PostgreSQL");
    assert_eq!(pg.host(), "127.0.0.1");
    assert_eq!(pg.user(), "postgres");
    assert!(pg.password().chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(
        pg.url("postgres"),
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/postgres",
            pg.password(),
            pg.port()
        )
    );
    assert!(pg.bin_dir().join("initdb").is_file());
    assert!(pg.data_dir().join("PG_VERSION").is_file());
    assert!(pg.log_path().is_file());

    let client = connect(&pg.url("postgres")).await.expect("log in");
    let row = client.query_one("SELECT 1", &[]).await.expect("SELECT 1");
    assert_eq!(row.get::<_, i32>(0), 1);

    let wrong = format!(
        "postgres://postgres:wrong{}@127.0.0.1:{}/postgres",
        pg.password(),
        pg.port()
    );
    let err = connect(&wrong)
        .await
        .map(drop)
        .expect_err("a wrong password must be refused");
    assert_eq!(
        err.as_db_error().map(|db| db.code()),
        Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD),
        "unexpected error: {err}"
    );
}

#[test]
fn stop_and_drop_remove_everything() {
    let mut pg = LocalPg::start().expect("start a throwaway PostgreSQL");
    let root = pg.root.clone();
    let data_dir = pg.data_dir().to_path_buf();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, pg.port()));
    assert!(TcpStream::connect(addr).is_ok());

    pg.stop().expect("stop");
    pg.stop().expect("stop again (idempotent)");
    drop(pg);
    assert!(!data_dir.exists(), "{} still exists", data_dir.display());
    assert!(!root.exists(), "{} still exists", root.display());
    assert!(
        TcpStream::connect(addr).is_err(),
        "{addr} still accepts connections"
    );
}

#[test]
fn drop_alone_stops_the_server() {
    let pg = LocalPg::start().expect("start a throwaway PostgreSQL");
    let root = pg.root.clone();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, pg.port()));
    drop(pg);
    assert!(!root.exists(), "{} still exists", root.display());
    assert!(
        TcpStream::connect(addr).is_err(),
        "{addr} still accepts connections"
    );
}

#[test]
fn shared_is_one_instance() {
    let first = LocalPg::shared().expect("start the shared PostgreSQL");
    let second = LocalPg::shared().expect("get the shared PostgreSQL again");
    assert!(std::ptr::eq(first, second));
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, first.port()));
    assert!(TcpStream::connect(addr).is_ok());
}

#[test]
fn server_survives_the_thread_that_started_it() {
    // PDEATHSIG is per thread: a server started from a finished thread must still be up.
    let pg = thread::spawn(|| LocalPg::start().expect("start a throwaway PostgreSQL"))
        .join()
        .expect("the starting thread panicked");
    thread::sleep(Duration::from_millis(300));
    assert_eq!(try_login(pg.port(), pg.password(), false), Ok(()));
}

#[test]
fn a_bad_certificate_fails_the_start_with_the_server_log() {
    let tls = ServerTls {
        cert_pem: "not a certificate".to_owned(),
        key_pem: "not a key".to_owned(),
        require: true,
    };
    assert!(
        !format!("{tls:?}").contains("not a key"),
        "Debug shows the key"
    );
    let err = LocalPg::start_with(LocalPgOptions { tls: Some(tls) })
        .expect_err("a server with a bad certificate must not start");
    assert!(
        matches!(&err, LocalPgError::ServerExited { log_tail, .. } if log_tail.contains("certificate")),
        "{err}"
    );
}

#[test]
fn helpers() {
    assert_eq!(parse_version("15"), Some(vec![15]));
    assert!(parse_version("9.6") < parse_version("10"));
    assert_eq!(parse_version("15-beta"), None);
    assert_eq!(percent_encode("a b/ü"), "a%20b%2F%C3%BC");
    assert_eq!(tail("short"), "short");
    assert!(find_bin_dir().is_ok_and(|dir| dir.join("postgres").is_file()));
}
