//! A PostgreSQL for the devnet: a fresh database on the server named by `DATABASE_URL`, or, without it, a throwaway
//! cluster made with the local PostgreSQL binaries (`initdb`/`pg_ctl`) in a temporary directory, removed at the end.

use std::path::{Path, PathBuf};
use std::process::Command;

use diesel::{Connection, PgConnection, RunQueryDsl};

/// Loopback traffic needs no TLS, and libpq's default (`sslmode=prefer`) spends a tenth of a catch-up's CPU on it
/// when the server offers TLS (Debian's does): the devnet database is reached without it unless the URL says.
fn loopback_without_tls(url: String) -> String {
    let host = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .map(|auth| auth.rsplit('@').next().unwrap_or(auth))
        .and_then(|hp| hp.rsplit_once(':').map_or(Some(hp), |(h, _)| Some(h)))
        .unwrap_or("");
    if !url.contains('?') && matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        format!("{url}?sslmode=disable")
    } else {
        url
    }
}

/// A database that lives as long as this value.
pub struct DevPostgres {
    /// URL of the devnet's own database.
    pub url: String,
    admin_url: String,
    name: String,
    cluster: Option<Cluster>,
}

struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    as_postgres: bool,
    port: u16,
}

fn run(cmd: &mut Command) -> std::io::Result<()> {
    let out = cmd.output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{:?} failed: {}{}",
            cmd,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

fn pg_command(c: &Cluster, tool: &str) -> Command {
    let exe = c.bin.join(tool);
    if c.as_postgres {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(exe);
        cmd
    } else {
        Command::new(exe)
    }
}

fn find_bin() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Cluster {
    fn start(&self) -> std::io::Result<()> {
        run(pg_command(self, "pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("log"))
            .arg("-w")
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                self.port,
                self.dir.display()
            ))
            .arg("start"))
    }

    fn stop(&self) -> std::io::Result<()> {
        run(pg_command(self, "pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"]))
    }
}

impl DevPostgres {
    /// Stops the throwaway cluster (an outage, for tests); an error without one.
    pub fn stop_server(&self) -> std::io::Result<()> {
        self.cluster
            .as_ref()
            .ok_or_else(|| std::io::Error::other("no throwaway cluster"))?
            .stop()
    }

    /// Starts the throwaway cluster again on the same port.
    pub fn start_server(&self) -> std::io::Result<()> {
        self.cluster
            .as_ref()
            .ok_or_else(|| std::io::Error::other("no throwaway cluster"))?
            .start()
    }

    /// Creates the devnet database, starting a throwaway cluster when `database_url` is `None`.
    pub fn start(database_url: Option<&str>) -> std::io::Result<DevPostgres> {
        let (admin_url, cluster) = match database_url {
            Some(url) => (url.to_string(), None),
            None => {
                let bin = find_bin().ok_or_else(|| {
                    std::io::Error::other(
                        "no DATABASE_URL and no local PostgreSQL binaries (/usr/lib/postgresql/*/bin/initdb); \
                         install PostgreSQL (Debian: apt-get install postgresql) or set DATABASE_URL",
                    )
                })?;
                let dir = std::env::temp_dir().join(format!("smanager-devnet-pg-{}", std::process::id()));
                std::fs::create_dir_all(&dir)?;
                // initdb refuses to run as root: use the postgres account then.
                let as_postgres = Command::new("id")
                    .arg("-u")
                    .output()
                    .map(|o| o.stdout.starts_with(b"0"))
                    .unwrap_or(false);
                if as_postgres {
                    run(Command::new("chown").arg("postgres").arg(&dir))?;
                }
                let port = free_port()?;
                let c = Cluster {
                    bin,
                    dir,
                    as_postgres,
                    port,
                };
                run(pg_command(&c, "initdb")
                    .arg("-D")
                    .arg(c.dir.join("data"))
                    .args(["-A", "trust", "-U", "postgres"]))?;
                c.start()?;
                (format!("postgres://postgres@127.0.0.1:{port}/postgres"), Some(c))
            }
        };
        let name = format!("smanager_devnet_{}", std::process::id());
        let mut conn =
            PgConnection::establish(&admin_url).map_err(|e| std::io::Error::other(format!("{admin_url}: {e}")))?;
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&mut conn)
            .map_err(std::io::Error::other)?;
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .map_err(std::io::Error::other)?;
        let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(b, _)| b);
        Ok(DevPostgres {
            url: loopback_without_tls(format!("{base}/{name}")),
            admin_url,
            name,
            cluster,
        })
    }

    /// Where the throwaway cluster lives, if one was started.
    pub fn cluster_dir(&self) -> Option<&Path> {
        self.cluster.as_ref().map(|c| c.dir.as_path())
    }
}

impl Drop for DevPostgres {
    fn drop(&mut self) {
        if let Some(c) = &self.cluster {
            let _ = run(pg_command(c, "pg_ctl")
                .arg("-D")
                .arg(c.dir.join("data"))
                .args(["-m", "immediate", "stop"]));
            let _ = std::fs::remove_dir_all(&c.dir);
        } else if let Ok(mut conn) = PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&mut conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::loopback_without_tls;

    #[test]
    fn loopback_urls_go_without_tls_and_others_are_left_alone() {
        for (url, want) in [
            (
                "postgres://postgres@127.0.0.1:5432/db",
                "postgres://postgres@127.0.0.1:5432/db?sslmode=disable",
            ),
            (
                "postgres://u:p@localhost/db",
                "postgres://u:p@localhost/db?sslmode=disable",
            ),
            (
                "postgres://u@[::1]:5432/db",
                "postgres://u@[::1]:5432/db?sslmode=disable",
            ),
            ("postgres://u@db.example:5432/db", "postgres://u@db.example:5432/db"),
            (
                "postgres://u@127.0.0.1/db?sslmode=require",
                "postgres://u@127.0.0.1/db?sslmode=require",
            ),
        ] {
            assert_eq!(loopback_without_tls(url.to_string()), want, "{url}");
        }
    }
}
