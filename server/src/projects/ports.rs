//! Published host ports: one row per (host port, protocol) in
//! `service_ports`, so no two services ever hold one. Saving checks the
//! holder (named in the refusal) and, for a port this service does not hold
//! yet, that nothing on this machine listens on it.

use sqlx::SqliteConnection;

use super::{PortSpec, ProjectError, Result};

fn taken(message: String) -> ProjectError {
    ProjectError::Conflict { field: "ports", message }
}

/// Whether something on this machine already listens on the port.
fn in_use(port: &PortSpec) -> bool {
    let Ok(number) = u16::try_from(port.host) else { return false };
    match port.protocol.as_str() {
        "udp" => std::net::UdpSocket::bind(("0.0.0.0", number)).is_err(),
        _ => std::net::TcpListener::bind(("0.0.0.0", number)).is_err(),
    }
}

/// Replaces `service_id`'s published ports with `ports`, on `tx`.
pub(super) async fn save(tx: &mut SqliteConnection, service_id: i64, ports: &[PortSpec]) -> Result<()> {
    let held: Vec<(i64, String)> =
        sqlx::query_as("SELECT host_port, protocol FROM service_ports WHERE service_id = ?")
            .bind(service_id)
            .fetch_all(&mut *tx)
            .await?;
    for port in ports {
        let holder: Option<(String, String)> = sqlx::query_as(
            "SELECT p.name, s.name FROM service_ports AS sp JOIN services AS s ON s.id = sp.service_id \
             JOIN projects AS p ON p.id = s.project_id \
             WHERE sp.host_port = ? AND sp.protocol = ? AND sp.service_id <> ?",
        )
        .bind(port.host)
        .bind(&port.protocol)
        .bind(service_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((project, service)) = holder {
            return Err(taken(format!(
                "host port {}/{} is already published by the service {project}/{service}",
                port.host, port.protocol
            )));
        }
        let ours = held.iter().any(|(h, p)| i64::from(port.host) == *h && *p == port.protocol);
        if !ours && in_use(port) {
            return Err(taken(format!(
                "host port {}/{} is in use on this machine",
                port.host, port.protocol
            )));
        }
    }
    sqlx::query("DELETE FROM service_ports WHERE service_id = ?").bind(service_id).execute(&mut *tx).await?;
    for port in ports {
        sqlx::query(
            "INSERT INTO service_ports (service_id, host_port, protocol, container_port) VALUES (?, ?, ?, ?)",
        )
        .bind(service_id)
        .bind(port.host)
        .bind(&port.protocol)
        .bind(port.container)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}
