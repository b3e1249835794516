//! Who may see and do what: each role inside its scope, another LA and another school seeing
//! nothing, analysts seeing no names, auditors changing nothing, and every way to present no
//! valid token.

use reqwest::Method;
use serde_json::{Value, json};

use super::support::{
    Api, LA, OTHER_LA, OTHER_SCHOOL, PRIMARY, SECONDARY, days_ago, item, items, lists, upn,
};

both_backends!(each_role_sees_and_does_only_what_its_scope_allows);

fn pupil(n: u32, given_name: &str, la_code: &str, school_urn: Option<&str>) -> Value {
    json!({
        "upn": upn(n),
        "given_name": given_name,
        "family_name": "Marsh",
        "date_of_birth": "2014-11-30",
        "la_code": la_code,
        "school_urn": school_urn,
    })
}

async fn each_role_sees_and_does_only_what_its_scope_allows(database_url: &str) {
    let api = Api::start(database_url).await;
    let [
        la,
        other_la,
        primary,
        other_school,
        auditor,
        national_auditor,
        analyst,
        leaver,
    ] = api.tokens([
        ("cme-team", "la", &["--la", LA]),
        ("neighbouring-cme-team", "la", &["--la", OTHER_LA]),
        ("primary-office", "school", &["--school", PRIMARY]),
        ("other-school-office", "school", &["--school", OTHER_SCHOOL]),
        ("la-auditor", "auditor", &["--la", LA]),
        ("national-auditor", "auditor", &[]),
        ("la-analyst", "analyst", &["--la", LA]),
        ("leaver", "la", &["--la", LA]),
    ]);

    // Kit is on the primary's roll in LA 330 with no secondary place; Nia is the
    // neighbouring LA's child in the same situation.
    let kit = api
        .register(&primary, &pupil(11, "Kit", LA, Some(PRIMARY)))
        .await;
    api.command(&kit, &la, &json!({"type": "RecordNoAllocation"}))
        .await;
    let nia = api
        .register(&other_la, &pupil(12, "Nia", OTHER_LA, None))
        .await;
    api.command(&nia, &other_la, &json!({"type": "RecordNoAllocation"}))
        .await;
    api.eventually(
        "/api/v1/watchlist",
        &la,
        "Kit is on LA 330's watchlist",
        |list| lists(list, &kit),
    )
    .await;
    api.eventually(
        "/api/v1/watchlist",
        &other_la,
        "Nia is on LA 331's watchlist",
        |list| lists(list, &nia),
    )
    .await;
    let by_upn = format!("/api/v1/children?upn={}", upn(11));
    api.eventually(&by_upn, &la, "Kit is found by UPN", |list| {
        lists(list, &kit)
    })
    .await;
    let kit_events = api.history(&kit, &la).await.len();

    let child = format!("/api/v1/children/{kit}");
    let history = format!("/api/v1/children/{kit}/history");
    let access_log = format!("/api/v1/children/{kit}/access-log");

    // Inside the scope: the LA, the school the child is on roll at, and the LA's auditors.
    for token in [&la, &primary, &auditor, &national_auditor] {
        let summary = api.get_ok(&child, token).await;
        assert_eq!(summary["child_id"], kit.as_str());
        assert_eq!(summary["upn"], upn(11));
        assert_eq!(summary["given_name"], "Kit");
        assert_eq!(summary["family_name"], "Marsh");
        assert_eq!(summary["date_of_birth"], "2014-11-30");
        assert_eq!(summary["la_code"], LA);
        assert_eq!(summary["school_urn"], PRIMARY);
        assert_eq!(summary["destination_urn"], Value::Null);
        assert_eq!(summary["flags"], json!(["no_destination"]));
        assert_eq!(summary["version"], 2);
        assert_eq!(api.history(&kit, token).await.len(), kit_events);
        assert!(lists(&api.get_ok(&by_upn, token).await, &kit));
    }
    assert_eq!(
        api.get_ok(&format!("/api/v1/children/{nia}"), &national_auditor)
            .await["la_code"],
        OTHER_LA,
        "an auditor scoped to all sees every LA"
    );

    // Outside it: another LA and another school get the same 404 as for a child that does
    // not exist, with nothing about the child in it.
    let nobody = uuid::Uuid::new_v4();
    let unknown = api
        .get(&format!("/api/v1/children/{nobody}"), &la)
        .await
        .problem(404, "not_found");
    let outsiders = [(&other_la, "another LA"), (&other_school, "another school")];
    for (token, who) in outsiders {
        for path in [&child, &history] {
            let reply = api.get(path, token).await;
            assert_eq!(
                reply.problem(404, "not_found"),
                unknown,
                "{who}: GET {path}"
            );
            for secret in [kit.as_str(), "Kit", upn(11).as_str()] {
                assert!(!reply.text.contains(secret), "{who}: {}", reply.text);
            }
        }
        let contact = json!({"type": "LogContactAttempt", "method": "phone", "outcome": "no_answer", "made_on": days_ago(1)});
        let reply = api.send(&kit, token, &contact).await;
        assert_eq!(reply.problem(404, "not_found"), unknown, "{who}: a command");
        // Not even a stale version gives the record away.
        let stale = api
            .call(
                Method::POST,
                &format!("/api/v1/children/{kit}/commands"),
                Some(token),
                Some(contact.to_string()),
                &[("if-match", "\"1\"")],
            )
            .await;
        assert_eq!(stale.problem(404, "not_found"), unknown, "{who}: If-Match");
        let found = api.get_ok(&by_upn, token).await;
        assert!(
            items(&found).is_empty(),
            "{who} finds nothing by UPN: {found}"
        );
    }
    api.get(&access_log, &other_la)
        .await
        .problem(404, "not_found");
    let neighbours_list = api.get_ok("/api/v1/watchlist", &other_la).await;
    assert!(lists(&neighbours_list, &nia) && !lists(&neighbours_list, &kit));
    for path in [
        format!("/api/v1/watchlist?la={LA}"),
        format!("/api/v1/reports/destination-changes?la={LA}"),
        format!("/api/v1/reports/day-one-no-shows?la={LA}"),
    ] {
        api.get(&path, &other_la).await.problem(403, "forbidden");
    }
    let own_cohort = api
        .get_ok(
            &format!("/api/v1/schools/{OTHER_SCHOOL}/incoming"),
            &other_school,
        )
        .await;
    assert!(!lists(&own_cohort, &kit), "{own_cohort}");
    api.get(
        &format!("/api/v1/schools/{SECONDARY}/incoming"),
        &other_school,
    )
    .await
    .problem(403, "forbidden");

    // Analysts: the watchlist and reports with no names, UPNs or dates of birth, and no
    // records.
    let anonymous = api
        .eventually(
            "/api/v1/watchlist",
            &analyst,
            "the analyst's watchlist shows Kit",
            |list| lists(list, &kit),
        )
        .await;
    assert!(!lists(&anonymous, &nia), "the analyst is scoped to LA 330");
    let row = item(&anonymous, &kit).expect("listed");
    assert_eq!(row["reasons"], json!(["no_destination"]));
    assert_eq!(row["school_urn"], PRIMARY);
    for listed in items(&anonymous) {
        for personal in ["upn", "given_name", "family_name", "date_of_birth"] {
            assert!(listed.get(personal).is_none(), "no {personal}: {listed}");
        }
    }
    let text = api.get("/api/v1/watchlist", &analyst).await.text;
    assert!(!text.contains("Kit") && !text.contains(&upn(11)), "{text}");
    let csv = api
        .call(
            Method::GET,
            "/api/v1/watchlist",
            Some(&analyst),
            None,
            &[("accept", "text/csv")],
        )
        .await;
    assert_eq!(
        csv.text.lines().next(),
        Some("child_id,la_code,school_urn,destination_urn,reasons,since")
    );
    assert!(!csv.text.contains("Kit") && !csv.text.contains(&upn(11)));
    for path in [
        "/api/v1/reports/destination-changes",
        "/api/v1/reports/day-one-no-shows",
    ] {
        api.get_ok(path, &analyst).await;
    }
    for path in [&child, &history, &access_log, &by_upn] {
        api.get(path, &analyst).await.problem(403, "forbidden");
    }
    api.get(&format!("/api/v1/watchlist?la={OTHER_LA}"), &analyst)
        .await
        .problem(403, "forbidden");

    // Auditors read everything in scope, including the access log, and change nothing.
    let log = api.get_ok(&access_log, &auditor).await;
    assert!(!items(&log).is_empty(), "{log}");
    api.get_ok("/api/v1/watchlist", &auditor).await;
    for token in [&auditor, &national_auditor, &analyst] {
        api.send(&kit, token, &json!({"type": "RecordNoAllocation"}))
            .await
            .problem(403, "forbidden");
        api.post("/api/v1/children", token, &pupil(13, "Ola", LA, None))
            .await
            .problem(403, "forbidden");
    }

    // Schools may not send the LA's commands, nor act for another school; an LA may not
    // register another LA's child; schools do not read the LA's watchlist or access logs.
    for command in [
        json!({"type": "AllocatePupil", "school_urn": SECONDARY}),
        json!({"type": "AcceptCmeReferral", "notes": ""}),
        json!({"type": "DecideAppeal", "school_urn": SECONDARY, "outcome": "upheld"}),
        json!({"type": "RecordArrival", "school_urn": OTHER_SCHOOL, "date": days_ago(1)}),
    ] {
        api.send(&kit, &primary, &command)
            .await
            .problem(403, "forbidden");
    }
    api.post(
        "/api/v1/children",
        &primary,
        &pupil(14, "Ola", LA, Some(OTHER_SCHOOL)),
    )
    .await
    .problem(403, "forbidden");
    api.post("/api/v1/children", &la, &pupil(15, "Ola", OTHER_LA, None))
        .await
        .problem(403, "forbidden");
    api.get("/api/v1/watchlist", &primary)
        .await
        .problem(403, "forbidden");
    api.get(&access_log, &primary)
        .await
        .problem(403, "forbidden");
    api.get(&format!("/api/v1/schools/{PRIMARY}/incoming"), &primary)
        .await
        .expect(200);
    // None of the refused commands appended anything.
    assert_eq!(api.history(&kit, &la).await.len(), kit_events);

    // No token, a made-up token, another scheme, a revoked token: 401 everywhere.
    let register = pupil(16, "Ola", LA, None).to_string();
    let contact = json!({"type": "RecordNoAllocation"}).to_string();
    let commands = format!("/api/v1/children/{kit}/commands");
    let protected: [(Method, &str, Option<&String>); 9] = [
        (Method::GET, "/api/v1/children?upn=", None),
        (Method::GET, &child, None),
        (Method::GET, &history, None),
        (Method::GET, &access_log, None),
        (Method::POST, "/api/v1/children", Some(&register)),
        (Method::POST, &commands, Some(&contact)),
        (Method::GET, "/api/v1/watchlist", None),
        (Method::GET, "/api/v1/reports/day-one-no-shows", None),
        (Method::GET, "/api/v1/schools/100001/incoming", None),
    ];
    let bad_credentials: [(&str, &[(&str, &str)]); 3] = [
        ("no token", &[]),
        (
            "a made-up token",
            &[(
                "authorization",
                "Bearer rc_0123456789abcdef0123456789abcdef",
            )],
        ),
        (
            "basic credentials",
            &[("authorization", "Basic Y21lOnRlYW0=")],
        ),
    ];
    for (method, path, body) in &protected {
        for (what, headers) in bad_credentials {
            let reply = api
                .call(method.clone(), path, None, body.cloned(), headers)
                .await;
            reply.problem(401, "unauthorized");
            assert_eq!(
                reply.www_authenticate.as_deref(),
                Some("Bearer"),
                "{what}: {method} {path}"
            );
        }
    }
    api.get_ok("/api/v1/watchlist", &leaver).await;
    let revoked = api.cli(&["token", "revoke", "leaver"]);
    assert!(revoked.contains("leaver"), "{revoked}");
    api.get("/api/v1/watchlist", &leaver)
        .await
        .problem(401, "unauthorized");
    api.send(&kit, &leaver, &json!({"type": "RecordNoAllocation"}))
        .await
        .problem(401, "unauthorized");
    let listed = api.cli(&["token", "list"]);
    let line = listed
        .lines()
        .find(|line| line.starts_with("leaver "))
        .unwrap_or_else(|| panic!("`token list` lists the revoked token: {listed}"));
    assert!(
        !line.trim_end().ends_with(" -"),
        "the revoked token shows when it was revoked: {line}"
    );
    assert!(
        !listed.contains(&leaver),
        "`token list` never shows a token: {listed}"
    );
    assert_eq!(api.history(&kit, &la).await.len(), kit_events);
}
