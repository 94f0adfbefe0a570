//! Hostile pipeline files: keys that would hand a step the host, and YAML
//! built to exhaust the parser. Each is refused before anything runs.

use super::tests_refusals::{assert_refused, refused, A};

#[test]
fn docker_socket_is_refused() {
    let volumes = "steps:\n  - name: a\n    image: busybox\n    commands: [x]\n    volumes: [\"/var/run/docker.sock:/var/run/docker.sock\"]\n";
    assert_refused(volumes, 5, 5, "steps[0].volumes", "mounting the Docker socket is never allowed");
    let image = "steps:\n  - name: a\n    image: /run/docker.sock\n    commands: [x]\n";
    assert_refused(image, 3, 12, "steps[0].image", "mounting the Docker socket is never allowed");
    let key = "steps:\n  - name: a\n    image: busybox\n    commands: [x]\n    docker_socket: true\n";
    assert_refused(key, 5, 5, "steps[0].docker_socket", "mounting the Docker socket is never allowed");
}

#[test]
fn privileged_is_refused_in_steps_and_services() {
    let step = "steps:\n  - name: a\n    image: busybox\n    privileged: true\n    commands: [x]\n";
    assert_refused(step, 4, 5, "steps[0].privileged", "privileged mode is never allowed in a pipeline");
    let service = format!("services:\n  db:\n    image: postgres\n    privileged: true\nsteps:\n{A}");
    assert_refused(
        &service,
        4,
        5,
        "services.db.privileged",
        "privileged mode is never allowed in a pipeline",
    );
    let nested = format!("services:\n  db:\n    image: postgres\n    healthcheck:\n      cmd: [x]\n      privileged: true\nsteps:\n{A}");
    assert_refused(&nested, 6, 7, "services.db.healthcheck.privileged", "privileged mode is never allowed");
}

#[test]
fn host_paths_are_refused() {
    let text =
        "steps:\n  - name: a\n    image: busybox\n    commands: [x]\n    volumes:\n      - /etc:/host-etc\n";
    assert_refused(text, 5, 5, "steps[0].volumes", "host paths are never allowed in a pipeline");
}

#[test]
fn host_network_and_namespaces_are_refused() {
    let net = "steps:\n  - name: a\n    image: busybox\n    commands: [x]\n    network_mode: host\n";
    assert_refused(net, 5, 5, "steps[0].network_mode", "the host network is never allowed in a pipeline");
    for (key, message) in [
        ("pid: host", "the host PID namespace is never allowed"),
        ("ipc: host", "the host IPC namespace is never allowed"),
        ("cap_add: [SYS_ADMIN]", "added capabilities are never allowed"),
        ("security_opt: [seccomp=unconfined]", "security options are never allowed"),
        ("userns_mode: host", "leaving the user namespace is never allowed"),
        ("devices: [/dev/sda]", "host devices are never allowed"),
        ("network: bridge", "choosing a network is never allowed"),
    ] {
        let text = format!("services:\n  db:\n    image: postgres\n    {key}\nsteps:\n{A}");
        let field = format!("services.db.{}", key.split(':').next().unwrap_or_default());
        assert_refused(&text, 4, 5, &field, message);
    }
}

#[test]
fn hostile_yaml_is_bounded() {
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n";
    let errors = refused(bomb);
    assert!(errors.0[0].message.contains("aliases copy more than"), "{errors}");
    // Flow nesting: the parser's own recursion limit answers.
    let deep = format!("steps: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let errors = refused(&deep);
    assert_eq!(errors.0[0].field, "(file)");
    assert!(errors.0[0].message.contains("recursion limit"), "{errors}");
    // Block nesting streams events: the tree's own depth limit answers.
    let block: String = (0..40).map(|i| format!("{}k:\n", "  ".repeat(i))).collect();
    let errors = refused(&block);
    let e = &errors.0[0];
    assert_eq!((e.field.as_str(), e.line, e.column), ("(file)", 25, 49), "{errors}");
    assert!(e.message.contains("nests deeper than 24 levels"), "{errors}");
}

#[test]
fn custom_tags_are_refused() {
    let text = "steps:\n  - name: a\n    image: !env IMAGE\n    commands: [x]\n";
    assert_refused(text, 3, 12, "steps[0].image", "YAML tags are not supported");
}
