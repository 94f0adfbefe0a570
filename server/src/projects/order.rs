//! `deploy_after`: the order of a project's "deploy all". A service names
//! the services of its project it deploys after; the names are resolved
//! when saved and a cycle is refused, naming it.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::SqliteConnection;

use super::{ProjectError, Result};

fn refused(message: String) -> ProjectError {
    ProjectError::Conflict { field: "deploy_after", message }
}

/// Replaces `service_id`'s `deploy_after` with `names`, on `tx`.
pub(super) async fn save(
    tx: &mut SqliteConnection,
    project_id: i64,
    service_id: i64,
    names: &[String],
) -> Result<()> {
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, name FROM services WHERE project_id = ? AND deleting_at IS NULL")
            .bind(project_id)
            .fetch_all(&mut *tx)
            .await?;
    let by_name: BTreeMap<&str, i64> = rows.iter().map(|(id, name)| (name.as_str(), *id)).collect();
    let name_of: BTreeMap<i64, &str> = rows.iter().map(|(id, name)| (*id, name.as_str())).collect();
    let mut after = BTreeSet::new();
    for name in names {
        match by_name.get(name.as_str()) {
            Some(id) if *id == service_id => {
                return Err(refused("a service cannot deploy after itself".into()))
            }
            Some(id) => {
                after.insert(*id);
            }
            None => return Err(refused(format!("there is no service named {name} in this project"))),
        }
    }
    let edges: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT service_id, after_id FROM service_deploy_after \
         WHERE service_id IN (SELECT id FROM services WHERE project_id = ?) AND service_id <> ?",
    )
    .bind(project_id)
    .bind(service_id)
    .fetch_all(&mut *tx)
    .await?;
    let mut graph: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (from, to) in edges {
        graph.entry(from).or_default().push(to);
    }
    graph.insert(service_id, after.iter().copied().collect());
    if let Some(cycle) = cycle_through(&graph, service_id) {
        let names: Vec<&str> = cycle.iter().map(|id| name_of.get(id).copied().unwrap_or("?")).collect();
        return Err(refused(format!("a cycle: {}", names.join(" → "))));
    }
    sqlx::query("DELETE FROM service_deploy_after WHERE service_id = ?")
        .bind(service_id)
        .execute(&mut *tx)
        .await?;
    for id in after {
        sqlx::query("INSERT INTO service_deploy_after (service_id, after_id) VALUES (?, ?)")
            .bind(service_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// A path `start → … → start` in `graph`, if there is one.
fn cycle_through(graph: &BTreeMap<i64, Vec<i64>>, start: i64) -> Option<Vec<i64>> {
    fn walk(
        graph: &BTreeMap<i64, Vec<i64>>,
        at: i64,
        start: i64,
        path: &mut Vec<i64>,
        seen: &mut BTreeSet<i64>,
    ) -> bool {
        for &next in graph.get(&at).map(Vec::as_slice).unwrap_or_default() {
            if next == start {
                path.push(next);
                return true;
            }
            if seen.insert(next) {
                path.push(next);
                if walk(graph, next, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start];
    walk(graph, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

/// `services` in "deploy all" order: levels, each after every service its
/// members name (services outside `services` are ignored).
pub fn levels(services: &[i64], edges: &[(i64, i64)]) -> Vec<Vec<i64>> {
    let mut left: BTreeSet<i64> = services.iter().copied().collect();
    let mut out = Vec::new();
    while !left.is_empty() {
        let ready: Vec<i64> = left
            .iter()
            .copied()
            .filter(|s| !edges.iter().any(|(from, to)| from == s && left.contains(to)))
            .collect();
        // A cycle cannot be saved; should one exist, the rest go together.
        let level = if ready.is_empty() { left.iter().copied().collect() } else { ready };
        for s in &level {
            left.remove(s);
        }
        out.push(level);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_are_found_with_their_path() {
        let graph = BTreeMap::from([(1, vec![2]), (2, vec![3]), (3, vec![1])]);
        assert_eq!(cycle_through(&graph, 1), Some(vec![1, 2, 3, 1]));
        let graph = BTreeMap::from([(1, vec![2]), (2, vec![3])]);
        assert_eq!(cycle_through(&graph, 1), None);
    }

    #[test]
    fn levels_follow_deploy_after() {
        // web after db and cache; worker after web.
        let edges = [(3, 1), (3, 2), (4, 3)];
        assert_eq!(levels(&[1, 2, 3, 4], &edges), vec![vec![1, 2], vec![3], vec![4]]);
        assert_eq!(levels(&[3, 4], &edges), vec![vec![3], vec![4]]);
    }
}
