//! Requests the service refuses (bad JSON, bad values, unknown commands, a rule, a duplicate
//! UPN, a stale version, an oversized body) each get a problem document with a stable code
//! and append nothing; a retried command with the same idempotency key appends once.

use reqwest::Method;
use serde_json::{Value, json};

use super::support::{
    Api, LA, PRIMARY, Reply, SECONDARY, days_ago, event_types, items, today, upn,
    upn_with_wrong_check_letter,
};

both_backends!(refused_requests_get_problem_documents_and_append_nothing);

fn pupil(n: u32) -> Value {
    json!({
        "upn": upn(n),
        "given_name": "Rosa",
        "family_name": "Lind",
        "date_of_birth": "2015-01-20",
        "la_code": LA,
        "school_urn": PRIMARY,
    })
}

/// `pupil(n)` with one field changed (or removed, for `Value::Null`).
fn pupil_with(n: u32, field: &str, value: Value) -> Value {
    let mut body = pupil(n);
    let fields = body.as_object_mut().expect("a pupil is an object");
    if value.is_null() {
        fields.remove(field);
    } else {
        fields.insert(field.to_owned(), value);
    }
    body
}

/// The highest position in the event log, as `/ready` reports it.
async fn log_head(api: &Api) -> i64 {
    let ready = api
        .call(Method::GET, "/ready", None, None, &[])
        .await
        .expect(200);
    ready["projections"][0]["head"]
        .as_i64()
        .unwrap_or_else(|| panic!("/ready reports the log's head: {ready}"))
}

/// Asserts a 422 naming the field at fault.
fn invalid(reply: &Reply, code: &str, field: &str) {
    let problem = reply.problem(422, code);
    assert_eq!(problem["field"], field, "{}: {problem}", reply.asked);
}

async fn refused_requests_get_problem_documents_and_append_nothing(database_url: &str) {
    let api = Api::start(database_url).await;
    let [la] = api.tokens([("cme-team", "la", &["--la", LA])]);
    let rosa = api.register(&la, &pupil(21)).await;
    let commands = format!("/api/v1/children/{rosa}/commands");
    let head = log_head(&api).await;

    // Registration: a UPN already registered, then values that are not what they claim.
    let duplicate = api.post("/api/v1/children", &la, &pupil(21)).await;
    duplicate.problem(409, "duplicate_upn");
    api.post(
        "/api/v1/children",
        &la,
        &pupil_with(21, "given_name", json!("Someone Else")),
    )
    .await
    .problem(409, "duplicate_upn");
    let bad_registrations = [
        ("upn", json!(upn_with_wrong_check_letter(22)), "invalid_upn"),
        ("upn", json!("B80120000500"), "invalid_upn"),
        ("la_code", json!("33"), "invalid_la_code"),
        ("la_code", json!("3a0"), "invalid_la_code"),
        ("school_urn", json!("12345"), "invalid_school_urn"),
        (
            "date_of_birth",
            json!("2015-02-30"),
            "invalid_date_of_birth",
        ),
        (
            "date_of_birth",
            json!("20/01/2015"),
            "invalid_date_of_birth",
        ),
        ("family_name", Value::Null, "missing_field"),
        ("nickname", json!("Ro"), "unknown_field"),
    ];
    for (field, value, code) in bad_registrations {
        let reply = api
            .post("/api/v1/children", &la, &pupil_with(22, field, value))
            .await;
        invalid(&reply, code, field);
    }
    let tomorrow = (today() + chrono::Days::new(1)).to_string();
    api.post(
        "/api/v1/children",
        &la,
        &pupil_with(22, "date_of_birth", json!(tomorrow)),
    )
    .await
    .problem(422, "date_in_future");
    let malformed = api
        .call(
            Method::POST,
            "/api/v1/children",
            Some(&la),
            Some(r#"{"upn": "#.to_owned()),
            &[],
        )
        .await;
    malformed.problem(400, "malformed_json");
    api.call(
        Method::POST,
        "/api/v1/children",
        Some(&la),
        Some("[1, 2]".to_owned()),
        &[],
    )
    .await
    .problem(400, "body_not_object");
    let found = api
        .eventually(
            &format!("/api/v1/children?upn={}", upn(21)),
            &la,
            "the first registration is found by UPN",
            |list| !items(list).is_empty(),
        )
        .await;
    assert_eq!(items(&found).len(), 1, "one child has the UPN: {found}");
    let nobody = api
        .get_ok(&format!("/api/v1/children?upn={}", upn(22)), &la)
        .await;
    assert!(
        items(&nobody).is_empty(),
        "no refused registration landed: {nobody}"
    );

    // Commands: not JSON, not a command, not a field, not a value, not allowed by a rule.
    let raw = |body: &str| {
        let body = body.to_owned();
        let commands = commands.clone();
        let la = la.clone();
        let api = &api;
        async move {
            api.call(Method::POST, &commands, Some(&la), Some(body), &[])
                .await
        }
    };
    raw(r#"{"type": "RecordNoAllocation","#)
        .await
        .problem(400, "malformed_json");
    raw("not json at all").await.problem(400, "malformed_json");
    invalid(
        &raw(r#"{"type": "Teleport"}"#).await,
        "unknown_command_type",
        "type",
    );
    // A registration is not a command on an existing child.
    invalid(
        &raw(&pupil_with(25, "type", json!("RegisterChild")).to_string()).await,
        "unknown_command_type",
        "type",
    );
    invalid(
        &raw(r#"{"school_urn": "100002"}"#).await,
        "missing_type",
        "type",
    );
    invalid(
        &raw(r#"{"type": "RecordNoAllocation", "colour": "red"}"#).await,
        "unknown_field",
        "colour",
    );
    invalid(
        &raw(r#"{"type": "AllocatePupil"}"#).await,
        "missing_field",
        "school_urn",
    );
    invalid(
        &raw(r#"{"type": "AllocatePupil", "school_urn": "1000020"}"#).await,
        "invalid_school_urn",
        "school_urn",
    );
    invalid(
        &raw(r#"{"type": "LogContactAttempt", "method": "pigeon", "outcome": "no_answer"}"#).await,
        "invalid_method",
        "method",
    );
    invalid(
        &raw(r#"{"type": "RecordArrival", "school_urn": "100002", "date": "03/09/2026"}"#).await,
        "invalid_date",
        "date",
    );
    raw(&json!({"type": "DecideAppeal", "school_urn": SECONDARY, "outcome": "upheld"}).to_string())
        .await
        .problem(422, "no_appeal_pending");
    raw(
        &json!({"type": "RecordArrival", "school_urn": SECONDARY, "date": days_ago(1)}).to_string(),
    )
    .await
    .problem(422, "not_expected_at_school");

    // Bodies over 64 KiB are refused before they are parsed.
    let huge = json!({
        "type": "RecordTransitionConcern",
        "category": "other",
        "notes": "x".repeat(64 * 1024 + 512),
    });
    api.send(&rosa, &la, &huge)
        .await
        .problem(413, "payload_too_large");
    api.post(
        "/api/v1/children",
        &la,
        &pupil_with(23, "given_name", json!("y".repeat(70_000))),
    )
    .await
    .problem(413, "payload_too_large");

    // A child that is not there (or an id that is not an id) is a 404 for commands too.
    let nobody = uuid::Uuid::new_v4();
    api.send(
        &nobody.to_string(),
        &la,
        &json!({"type": "RecordNoAllocation"}),
    )
    .await
    .problem(404, "not_found");
    api.send("not-a-uuid", &la, &json!({"type": "RecordNoAllocation"}))
        .await
        .problem(404, "not_found");
    api.get("/api/v1/no-such-route", &la)
        .await
        .problem(404, "not_found");

    assert_eq!(
        log_head(&api).await,
        head,
        "no refused request appended anything"
    );
    assert_eq!(api.history(&rosa, &la).await.len(), 1);

    // Optimistic concurrency: a stale If-Match is a conflict and appends nothing.
    let with = |headers: Vec<(&'static str, String)>, command: Value| {
        let commands = commands.clone();
        let la = la.clone();
        let api = &api;
        async move {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(name, value)| (*name, value.as_str()))
                .collect();
            api.call(
                Method::POST,
                &commands,
                Some(&la),
                Some(command.to_string()),
                &headers,
            )
            .await
        }
    };
    let no_place = json!({"type": "RecordNoAllocation"});
    let appeal = json!({"type": "LodgeAppeal", "school_urn": SECONDARY});
    let first = with(vec![("if-match", "\"1\"".to_owned())], no_place.clone())
        .await
        .expect(200);
    assert_eq!(first["version"], 2);
    let stale = with(vec![("if-match", "\"1\"".to_owned())], appeal.clone()).await;
    let problem = stale.problem(409, "version_conflict");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains('2')),
        "the conflict names the current version: {problem}"
    );
    let summary = api.get_ok(&format!("/api/v1/children/{rosa}"), &la).await;
    assert_eq!(summary["version"], 2, "the stale command appended nothing");
    assert_eq!(api.history(&rosa, &la).await.len(), 2);
    with(vec![("if-match", "three".to_owned())], appeal.clone())
        .await
        .problem(400, "invalid_if_match");
    let current = with(vec![("if-match", "\"2\"".to_owned())], appeal.clone())
        .await
        .expect(200);
    assert_eq!(current["version"], 3);

    // An idempotent retry: the same key returns the first response and appends once.
    let concern = json!({"type": "RecordTransitionConcern", "category": "anxiety", "notes": "worried about moving schools"});
    let key = || vec![("idempotency-key", "concern-2026-07-01".to_owned())];
    let once = with(key(), concern.clone()).await;
    let twice = with(key(), concern.clone()).await;
    let first_body = once.expect(200);
    assert_eq!(twice.expect(200), first_body);
    assert_eq!(twice.text, once.text, "the retry's body is identical");
    assert_eq!(
        event_types(&first_body["events"]),
        ["TransitionConcernRecorded"]
    );
    assert_eq!(first_body["version"], 4);
    let history = api.history(&rosa, &la).await;
    assert_eq!(
        event_types(&Value::Array(history.clone())),
        [
            "ChildRegistered",
            "NoPlaceAllocated",
            "AppealLodged",
            "TransitionConcernRecorded"
        ]
    );
    // The key is spent on that command: another command with it is refused.
    with(key(), no_place.clone())
        .await
        .problem(422, "idempotency_key_reused");
    // A registration retried with its key gives the same child, once.
    let register = |body: Value| {
        let la = la.clone();
        let api = &api;
        async move {
            api.call(
                Method::POST,
                "/api/v1/children",
                Some(&la),
                Some(body.to_string()),
                &[("idempotency-key", "register-rosa-sibling")],
            )
            .await
        }
    };
    let registered = register(pupil(24)).await;
    let again = register(pupil(24)).await;
    assert_eq!(registered.expect(201), again.expect(201));
    let sibling = api
        .eventually(
            &format!("/api/v1/children?upn={}", upn(24)),
            &la,
            "the sibling is found by UPN",
            |list| !items(list).is_empty(),
        )
        .await;
    assert_eq!(items(&sibling).len(), 1);
    assert_eq!(
        items(&sibling)[0]["child_id"],
        registered.json()["child_id"]
    );
    assert_eq!(
        log_head(&api).await,
        head + 4,
        "three commands and one registration"
    );
}
