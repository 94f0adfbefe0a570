//! Every refusal names its line, column and field.

use super::*;

pub(super) fn refused(text: &str) -> SpecErrors {
    match parse(text) {
        Ok(spec) => panic!("expected a refusal, got {spec:?}"),
        Err(e) => e,
    }
}

/// `text` is refused at `line`:`column` for `field`, with a message that
/// contains `message`.
#[track_caller]
pub(super) fn assert_refused(text: &str, line: u32, column: u32, field: &str, message: &str) {
    let errors = refused(text);
    let Some(e) = errors.for_field(field) else { panic!("no refusal of {field} in:\n{errors}") };
    assert_eq!((e.line, e.column), (line, column), "position of {field} in:\n{errors}");
    assert!(e.message.contains(message), "message of {field}: {e}");
}

pub(super) const A: &str = "  - name: a\n    image: busybox\n    commands: [x]\n";

#[test]
fn display_names_line_column_and_field() {
    let errors = refused("steps:\n  - name: a\n    image: Busybox\n    commands: [x]\n");
    assert_eq!(errors.0.len(), 1);
    let shown = errors.to_string();
    assert!(shown.starts_with("line 3, column 12: steps[0].image: "), "{shown}");
}

#[test]
fn unknown_top_level_key_lists_the_allowed_keys() {
    let text = format!("stages: [a]\nsteps:\n{A}");
    assert_refused(
        &text,
        1,
        1,
        "stages",
        "unknown key 'stages' in the pipeline file; allowed keys: when, services, steps, matrix",
    );
}

#[test]
fn unknown_step_key() {
    let text = "steps:\n  - name: a\n    image: busybox\n    comands: [x]\n    commands: [x]\n";
    assert_refused(
        text,
        4,
        5,
        "steps[0].comands",
        "unknown key 'comands' in a step; allowed keys: name, image",
    );
}

#[test]
fn unknown_key_deep_inside() {
    let text = format!("services:\n  db:\n    image: postgres\n    healthcheck:\n      cmd: [x]\n      retry: 3\nsteps:\n{A}");
    assert_refused(&text, 6, 7, "services.db.healthcheck.retry", "unknown key 'retry' in a health check");
}

#[test]
fn type_errors_name_what_was_found() {
    assert_refused(
        "steps:\n  - name: a\n    image: busybox\n    commands: echo hi\n",
        4,
        15,
        "steps[0].commands",
        "must be a list, not a string",
    );
    assert_refused("steps:\n  name: a\n", 2, 3, "steps", "must be a list, not a map");
    assert_refused(
        "steps:\n  - name: a\n    image: busybox\n    commands: [x]\n    depends_on: a\n",
        5,
        17,
        "steps[0].depends_on",
        "must be a list, not a string",
    );
    assert_refused(
        &format!("services:\n  db:\n    image: postgres\n    healthcheck:\n      cmd: [x]\n      retries: many\nsteps:\n{A}"),
        6,
        16,
        "services.db.healthcheck.retries",
        "must be a whole number, not a string",
    );
    assert_refused(
        "steps:\n  - name: a\n    image: busybox\n    commands:\n      - echo a: b\n",
        5,
        9,
        "steps[0].commands[0]",
        "quote a command that contains ': '",
    );
}

#[test]
fn duplicate_step_name() {
    let text = "steps:\n  - name: a\n    image: busybox\n    commands: [x]\n  - name: a\n    image: busybox\n    commands: [y]\n";
    assert_refused(text, 5, 11, "steps[1].name", "'a' is already the name of steps[0]");
}

#[test]
fn duplicate_service_name() {
    let text = format!("services:\n  db:\n    image: postgres\n  db:\n    image: mysql\nsteps:\n{A}");
    assert_refused(&text, 4, 3, "services.db", "this key appears twice");
}

#[test]
fn duplicate_key_even_when_quoted_differently() {
    let text = "steps:\n  - name: a\n    \"name\": b\n    image: busybox\n    commands: [x]\n";
    assert_refused(text, 3, 5, "steps[0].name", "this key appears twice");
}

#[test]
fn service_without_image_or_healthcheck_cmd() {
    let text = format!("services:\n  db:\n    command: [x]\n    healthcheck:\n      retries: 3\nsteps:\n{A}");
    assert_refused(&text, 2, 3, "services.db.image", "a service needs an image");
    assert_refused(&text, 5, 7, "services.db.healthcheck.cmd", "a health check needs cmd");
}

#[test]
fn refusals_serialize_for_the_api() {
    let errors =
        refused("steps:\n  - name: a\n    image: busybox\n    commands: [x]\n    privileged: true\n");
    let json = serde_json::to_value(&errors).expect("json");
    assert_eq!(
        json,
        serde_json::json!([{
            "line": 5, "column": 5, "field": "steps[0].privileged",
            "message": "privileged mode is never allowed in a pipeline"
        }])
    );
    let back: SpecErrors = serde_json::from_value(json).expect("back");
    assert_eq!(back, errors);
}

#[test]
fn service_named_like_a_step() {
    let text = format!("services:\n  a:\n    image: postgres\nsteps:\n{A}");
    assert_refused(&text, 2, 3, "services.a", "steps and services need distinct names");
}

#[test]
fn service_name_must_be_a_host_name() {
    let text = format!("services:\n  My_DB:\n    image: postgres\nsteps:\n{A}");
    assert_refused(&text, 2, 3, "services.My_DB", "a service name is its host name");
}

#[test]
fn depends_on_naming_no_step() {
    let text =
        format!("steps:\n{A}  - name: b\n    image: busybox\n    commands: [y]\n    depends_on: [a, c]\n");
    assert_refused(&text, 8, 21, "steps[1].depends_on[1]", "no step is named 'c'");
}

#[test]
fn cycle_names_its_steps() {
    let text = "steps:\n  - name: a\n    image: busybox\n    commands: [x]\n    depends_on: [c]\n  - name: b\n    image: busybox\n    commands: [x]\n    depends_on: [a]\n  - name: c\n    image: busybox\n    commands: [x]\n    depends_on: [b]\n";
    assert_refused(text, 5, 17, "steps[0].depends_on", "depends_on makes a cycle: a → c → b → a");
}

#[test]
fn self_dependency() {
    let text = "steps:\n  - name: a\n    image: busybox\n    commands: [x]\n    depends_on: [a]\n";
    assert_refused(text, 5, 18, "steps[0].depends_on[0]", "a step cannot depend on itself");
}

#[test]
fn oversized_file_is_refused_before_parsing() {
    let mut text = format!("steps:\n{A}");
    text.push('#');
    text.push_str(&"x".repeat(MAX_FILE_BYTES));
    assert_refused(&text, 1, 1, "(file)", "the limit is 262144 (256 KiB)");
}

#[test]
fn matrix_of_40_says_the_count_and_the_limit() {
    let text = format!("matrix:\n  A: [1, 2, 3, 4, 5]\n  B: [1, 2, 3, 4, 5, 6, 7, 8]\nsteps:\n{A}");
    let errors = refused(&text);
    let e = errors.for_field("matrix").expect("matrix refusal");
    assert_eq!((e.line, e.column), (2, 3));
    assert_eq!(e.message, "matrix expands to 40 combinations; the limit is 32");
}

#[test]
fn include_matrix_over_the_limit() {
    let entries: String = (0..33).map(|i| format!("    - {{N: {i}}}\n")).collect();
    let text = format!("matrix:\n  include:\n{entries}steps:\n{A}");
    assert_refused(&text, 2, 3, "matrix", "matrix expands to 33 combinations; the limit is 32");
}

#[test]
fn matrix_axis_must_be_an_env_name() {
    let text = format!("matrix:\n  go-version: [1]\nsteps:\n{A}");
    assert_refused(&text, 2, 3, "matrix.go-version", "an axis name is an environment variable name");
}

#[test]
fn invalid_yaml_names_its_position() {
    let errors = refused("steps:\n  - name: a\n    image: [busybox\n");
    let e = &errors.0[0];
    assert_eq!(e.field, "(file)");
    assert!(e.message.starts_with("invalid YAML"), "{e}");
    assert!(e.line >= 3, "{e}");
}

#[test]
fn empty_file_and_missing_steps() {
    assert_refused("", 1, 1, "(file)", "the file is empty");
    assert_refused("# nothing\n", 1, 1, "(file)", "the file is empty");
    assert_refused("when: {event: push}\n", 1, 1, "steps", "the pipeline needs a steps list");
    assert_refused("steps: []\n", 1, 8, "steps", "must list at least one step");
    assert_refused(
        "- name: a\n",
        1,
        1,
        "(file)",
        "must be a map of when, services, steps, matrix, not a list",
    );
}

#[test]
fn multiple_documents_are_refused() {
    let text = format!("steps:\n{A}---\nsteps:\n{A}");
    assert_refused(&text, 6, 1, "(file)", "only one YAML document");
}

#[test]
fn step_kind_rules() {
    assert_refused("steps:\n  - name: a\n    commands: [x]\n", 2, 5, "steps[0]", "a step needs one of image");
    assert_refused(
        "steps:\n  - name: a\n    image: busybox\n    from: build\n    commands: [x]\n",
        4,
        5,
        "steps[0].from",
        "cannot have both image and from",
    );
    assert_refused(
        "steps:\n  - name: a\n    image: busybox\n",
        3,
        5,
        "steps[0].commands",
        "a step with image needs commands",
    );
    assert_refused(
        "steps:\n  - name: b\n    build: true\n  - name: a\n    from: base\n    commands: [x]\n",
        5,
        11,
        "steps[1].from",
        "from only takes 'build'",
    );
    assert_refused("steps:\n  - name: d\n    deploy: false\n", 3, 13, "steps[0].deploy", "must be true");
    assert_refused(
        "steps:\n  - name: b\n    build: true\n    commands: [x]\n",
        4,
        5,
        "steps[0].commands",
        "is not allowed on a build step",
    );
    assert_refused(
        "steps:\n  - image: busybox\n    commands: [x]\n",
        2,
        5,
        "steps[0].name",
        "every step needs a name",
    );
}

#[test]
fn one_build_and_one_deploy_at_most() {
    let text = "steps:\n  - name: b1\n    build: true\n  - name: b2\n    build: true\n";
    assert_refused(text, 5, 5, "steps[1].build", "only one build step is allowed; steps[0] is one already");
}

#[test]
fn build_image_needs_a_build_step_before_it() {
    assert_refused(
        "steps:\n  - name: t\n    from: build\n    commands: [x]\n",
        3,
        5,
        "steps[0].from",
        "needs a build step in this pipeline",
    );
    assert_refused(
        "steps:\n  - name: d\n    deploy: true\n  - name: b\n    build: true\n",
        3,
        5,
        "steps[0].deploy",
        "must come after the build step 'b'",
    );
    assert_refused(
        "steps:\n  - name: b\n    build: true\n  - name: t\n    from: build\n    commands: [x]\n    depends_on: []\n",
        5,
        5,
        "steps[1].from",
        "must depend on the build step 'b'",
    );
}

#[test]
fn field_grammars() {
    let step =
        |extra: &str| format!("steps:\n  - name: a\n    image: busybox\n    commands: [x]\n    {extra}\n");
    assert_refused(&step("timeout: 0s"), 5, 14, "steps[0].timeout", "must be between 1s and 24h");
    assert_refused(&step("timeout: 25h"), 5, 14, "steps[0].timeout", "must be between 1s and 24h");
    assert_refused(&step("timeout: soon"), 5, 14, "steps[0].timeout", "must be a duration");
    assert_refused(&step("workdir: src"), 5, 14, "steps[0].workdir", "must be an absolute path");
    assert_refused(&step("workdir: /a/../b"), 5, 14, "steps[0].workdir", "must not contain '..'");
    assert_refused(&step("failure: maybe"), 5, 14, "steps[0].failure", "must be 'ignore' or 'fail'");
    assert_refused(
        &step("environment: {1X: a}"),
        5,
        19,
        "steps[0].environment.1X",
        "must start with a letter",
    );
    assert_refused(
        &step("environment: {X: {from_secret: 'A B'}}"),
        5,
        36,
        "steps[0].environment.X.from_secret",
        "must name a secret env var",
    );
    assert_refused(&step("when: {event: deploy}"), 5, 19, "steps[0].when.event", "unknown value 'deploy'");
    assert_refused(&step("when: {branch: 'a[b'}"), 5, 20, "steps[0].when.branch", "is not a valid glob");
    assert_refused(&step("when: []"), 5, 11, "steps[0].when", "must not be an empty list");
    assert_refused(
        "steps:\n  - name: a b\n    image: busybox\n    commands: [x]\n",
        2,
        11,
        "steps[0].name",
        "must be 1 to 63 letters",
    );
}

#[test]
fn status_only_in_a_steps_when() {
    let text = format!("when:\n  status: failure\nsteps:\n{A}");
    assert_refused(&text, 2, 3, "when.status", "status is only allowed in a step's when");
}

#[test]
fn several_refusals_come_together_in_file_order() {
    let text = "steps:\n  - name: a\n    image: busybox\n    commands: [x]\n    privileged: true\n  - name: a\n    image: busybox\n    commands: [y]\n    timeout: 0\n";
    let errors = refused(text);
    let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["steps[0].privileged", "steps[1].name", "steps[1].timeout"]);
}

#[test]
fn lists_and_maps_that_must_not_be_empty_or_repeat() {
    let step =
        |extra: &str| format!("steps:\n  - name: a\n    image: busybox\n    commands: [x]\n    {extra}\n");
    assert_refused(&step("depends_on: [b, b]"), 5, 21, "steps[0].depends_on[1]", "'b' is listed twice");
    assert_refused(&step("when: {path: {}}"), 5, 18, "steps[0].when.path", "needs include or exclude");
    assert_refused(
        &step("environment: {X: {from_secret: A, default: b}}"),
        5,
        39,
        "steps[0].environment.X.default",
        "unknown key 'default' in an environment value",
    );
    assert_refused(
        "steps:\n  - name: a\n    image: busybox\n    commands: []\n",
        4,
        15,
        "steps[0].commands",
        "must list at least one command",
    );
    assert_refused(
        "steps:\n  - name: b\n    build:\n      args: {TOKEN: {from_secret: T}}\n",
        4,
        21,
        "steps[0].build.args.TOKEN",
        "secrets do not belong here",
    );
    assert_refused(
        &format!("matrix:\n  GO: ['1', '1']\nsteps:\n{A}"),
        2,
        13,
        "matrix.GO[1]",
        "'1' is listed twice",
    );
}
