//! A database of its own on the PostgreSQL at `DATABASE_URL` for one test:
//! the control planes of the test keep their state in it; it is dropped
//! (WITH FORCE) when the guard drops, also on panic.

use std::str::FromStr;
use std::time::Duration;

use sqlx::{ConnectOptions, Connection, Executor};
use vdi_cluster_core::testkit::backend_unreachable;
use vdi_cluster_postgres::PgConnectOptions;

use crate::common::CpOptions;

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh database; `url` is what `serve --store` is given.
pub struct PgDatabase {
    pub url: String,
    admin: String,
    name: String,
}

impl PgDatabase {
    pub async fn new() -> Option<Self> {
        let admin = database_url();
        let name = format!("vdi_e2e_{}", uuid::Uuid::new_v4().simple());
        let create = async {
            let options = PgConnectOptions::from_str(&admin)?;
            let mut conn = options.connect().await?;
            conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
                .await?;
            conn.close().await?;
            Ok::<_, sqlx::Error>(options.database(&name).to_url_lossy().to_string())
        };
        match tokio::time::timeout(Duration::from_secs(15), create).await {
            Ok(Ok(url)) => Some(Self { url, admin, name }),
            Ok(Err(e)) => backend_unreachable("PostgreSQL", &admin, &e),
            Err(e) => backend_unreachable("PostgreSQL", &admin, &e),
        }
    }
}

impl PgDatabase {
    /// Control-plane options keeping state in this database.
    pub fn options(&self) -> CpOptions {
        CpOptions {
            store: Some(self.url.clone()),
            ..CpOptions::default()
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside the test's runtime: drop the database from a
        // thread with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = PgConnectOptions::from_str(&admin)
                    .ok()?
                    .connect()
                    .await
                    .ok()?;
                conn.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}
