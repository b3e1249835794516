//! The transition year for a few children, from offer day to a child missing education being
//! located, as the LA, the primary school and the secondary school drive it over HTTP. Every
//! watchlist reason appears and clears; the reports, the incoming cohort, the history and its
//! as-of replay (over HTTP and from the CLI) agree with what was done; and rebuilding the read
//! models from the log changes no list.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::support::{
    APPEAL_SCHOOL, Api, LA, PRIMARY, SECONDARY, days_ago, event_types, instant, item, items, lists,
    today, upn,
};

both_backends!(the_transition_year_runs_end_to_end_and_a_rebuild_changes_no_list);

/// The tokens of the people in this story.
struct People {
    la: String,
    primary: String,
    secondary: String,
    auditor: String,
}

async fn the_transition_year_runs_end_to_end_and_a_rebuild_changes_no_list(database_url: &str) {
    let mut api = Api::start(database_url).await;
    let [la, primary, secondary, auditor] = api.tokens([
        ("cme-team", "la", &["--la", LA]),
        ("primary-office", "school", &["--school", PRIMARY]),
        ("secondary-office", "school", &["--school", SECONDARY]),
        ("safeguarding-review", "auditor", &["--la", LA]),
    ]);
    let people = People {
        la,
        primary,
        secondary,
        auditor,
    };

    let amira = no_place_then_appeal_then_a_changed_destination(&api, &people).await;
    let ben = a_day_one_no_show_resolved_by_a_late_arrival(&api, &people).await;
    let chloe = a_no_show_becomes_a_cme_case_and_the_child_is_located(&api, &people).await;
    let dev = a_removal_without_destination_until_the_child_is_located(&api, &people).await;
    let still_open = children_still_needing_attention(&api, &people).await;

    history_follows_the_child_across_schools_and_replays_as_of_a_moment(&api, &people, &amira)
        .await;
    the_access_log_records_who_viewed_the_record(&api, &people, &amira).await;
    reports_and_watchlist_export_as_csv(&api, &people, &amira, &ben, &still_open).await;

    // The children whose reasons all cleared are off the watchlist altogether.
    let watchlist = api
        .get_ok(&format!("/api/v1/watchlist?la={LA}"), &people.la)
        .await;
    for cleared in [&amira, &ben, &chloe, &dev] {
        assert!(
            !lists(&watchlist, cleared),
            "{cleared} is off the watchlist: {watchlist}"
        );
    }

    lists_come_in_pages(&api, &people).await;
    a_rebuild_leaves_every_list_the_same(&mut api, &people).await;
}

/// A registration body for a Year 6 pupil of LA 330.
fn pupil(n: u32, given_name: &str, family_name: &str, school_urn: Option<&str>) -> Value {
    json!({
        "upn": upn(n),
        "given_name": given_name,
        "family_name": family_name,
        "date_of_birth": "2015-05-01",
        "la_code": LA,
        "school_urn": school_urn,
        "year_group": 6,
    })
}

fn watchlist_path(reason: &str) -> String {
    format!("/api/v1/watchlist?la={LA}&reason={reason}")
}

/// Waits until the LA's watchlist, filtered to `reason`, lists the child with that reason,
/// and returns the child's item.
async fn appears(api: &Api, la: &str, child_id: &str, reason: &str) -> Value {
    let list = api
        .eventually(
            &watchlist_path(reason),
            la,
            &format!("{child_id} is on the watchlist for {reason}"),
            |list| lists(list, child_id),
        )
        .await;
    let found = item(&list, child_id).expect("listed").clone();
    assert!(
        found["reasons"]
            .as_array()
            .is_some_and(|reasons| reasons.iter().any(|r| r == reason)),
        "the item names {reason}: {found}"
    );
    assert!(is_date(&found["since"]), "since is a date: {found}");
    found
}

/// Waits until the watchlist, filtered to `reason`, no longer lists the child.
async fn clears(api: &Api, la: &str, child_id: &str, reason: &str) {
    api.eventually(
        &watchlist_path(reason),
        la,
        &format!("{reason} cleared for {child_id}"),
        |list| !lists(list, child_id),
    )
    .await;
}

fn is_date(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|raw| chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d").is_ok())
}

/// Offer day brings no place; an appeal is lodged; a place comes through; the appeal is upheld
/// for another school; the family moves and the destination changes back; the primary
/// confirms it in July and shares transition information; the child arrives in September.
async fn no_place_then_appeal_then_a_changed_destination(api: &Api, people: &People) -> String {
    let amira = api
        .register(&people.primary, &pupil(1, "Amira", "Khan", Some(PRIMARY)))
        .await;
    let la = people.la.as_str();

    let done = api
        .command(&amira, la, &json!({"type": "RecordNoAllocation"}))
        .await;
    assert_eq!(event_types(&done["events"]), ["NoPlaceAllocated"]);
    assert_eq!(done["version"], 2);
    let listed = appears(api, la, &amira, "no_destination").await;
    assert_eq!(listed["upn"], upn(1));
    assert_eq!(listed["given_name"], "Amira");
    assert_eq!(listed["family_name"], "Khan");
    assert_eq!(listed["school_urn"], PRIMARY);
    assert_eq!(listed["destination_urn"], Value::Null);
    assert_eq!(listed["since"], today().to_string());

    api.command(
        &amira,
        la,
        &json!({"type": "LodgeAppeal", "school_urn": APPEAL_SCHOOL}),
    )
    .await;
    appears(api, la, &amira, "appeal_pending").await;

    api.command(
        &amira,
        la,
        &json!({"type": "AllocatePupil", "school_urn": SECONDARY}),
    )
    .await;
    clears(api, la, &amira, "no_destination").await;
    appears(api, la, &amira, "appeal_pending").await;

    let decided = api
        .command(
            &amira,
            la,
            &json!({"type": "DecideAppeal", "school_urn": APPEAL_SCHOOL, "outcome": "upheld"}),
        )
        .await;
    assert_eq!(
        event_types(&decided["events"]),
        ["AppealDecided", "PupilAllocated"]
    );
    let allocated = &decided["events"][1];
    assert_eq!(allocated["school_urn"], APPEAL_SCHOOL);
    assert_eq!(allocated["previous_urn"], SECONDARY);
    assert_eq!(allocated["via_appeal"], true);
    assert_eq!(decided["version"], 6);
    assert_eq!(allocated["sequence"], 6);
    clears(api, la, &amira, "appeal_pending").await;

    let changed = api
        .command(
            &amira,
            la,
            &json!({"type": "ChangeDestination", "school_urn": SECONDARY, "reason": "family moved across the county"}),
        )
        .await;
    assert_eq!(event_types(&changed["events"]), ["DestinationChanged"]);
    let report = api
        .eventually(
            &format!("/api/v1/reports/destination-changes?la={LA}"),
            la,
            "the destination change is reported",
            |list| lists(list, &amira),
        )
        .await;
    let row = item(&report, &amira).expect("listed");
    assert_eq!(row["from_urn"], APPEAL_SCHOOL);
    assert_eq!(row["to_urn"], SECONDARY);
    assert_eq!(row["reason"], "family moved across the county");
    instant(&row["changed_at"]);
    let since_today = api
        .get_ok(
            &format!(
                "/api/v1/reports/destination-changes?la={LA}&since={}",
                today()
            ),
            la,
        )
        .await;
    assert!(lists(&since_today, &amira), "{since_today}");
    let tomorrow = today() + chrono::Days::new(1);
    let since_tomorrow = api
        .get_ok(
            &format!("/api/v1/reports/destination-changes?la={LA}&since={tomorrow}"),
            la,
        )
        .await;
    assert!(!lists(&since_tomorrow, &amira), "{since_tomorrow}");

    // A moment between the LA's change and the primary's confirmation, for the as-of replay
    // later; the pause only guarantees the two commands' timestamps differ.
    tokio::time::sleep(Duration::from_millis(20)).await;

    // July: the primary confirms the destination and shares what the secondary should know.
    let confirmed = api
        .command(
            &amira,
            &people.primary,
            &json!({"type": "ConfirmDestination", "school_urn": SECONDARY}),
        )
        .await;
    assert_eq!(event_types(&confirmed["events"]), ["DestinationConfirmed"]);
    api.command(
        &amira,
        &people.primary,
        &json!({
            "type": "ShareTransitionInfo",
            "school_urn": SECONDARY,
            "semh": true,
            "summary": "anxious about the bus journey; settles with a buddy",
            "strategies": "meet at the gate for the first week",
        }),
    )
    .await;
    let incoming_path = format!("/api/v1/schools/{SECONDARY}/incoming");
    let cohort = api
        .eventually(
            &incoming_path,
            &people.secondary,
            "the incoming cohort shows the shared transition information",
            |list| item(list, &amira).is_some_and(|child| !child["transition_info"].is_null()),
        )
        .await;
    let child = item(&cohort, &amira).expect("listed");
    assert_eq!(child["given_name"], "Amira");
    assert_eq!(child["current_school_urn"], PRIMARY);
    assert_eq!(child["destination_confirmed"], true);
    assert_eq!(
        child["vulnerable"], true,
        "SEMH puts the child in the vulnerable cohort"
    );
    let info = &child["transition_info"];
    assert_eq!(info["from_urn"], PRIMARY);
    assert_eq!(info["semh"], true);
    assert_eq!(info["safeguarding"], false);
    assert_eq!(
        info["summary"],
        "anxious about the bus journey; settles with a buddy"
    );
    assert_eq!(info["strategies"], "meet at the gate for the first week");

    // September: the secondary records the arrival, and the child leaves its incoming cohort.
    let arrived = api
        .command(
            &amira,
            &people.secondary,
            &json!({"type": "RecordArrival", "school_urn": SECONDARY, "date": days_ago(25)}),
        )
        .await;
    assert_eq!(event_types(&arrived["events"]), ["PupilArrived"]);
    assert_eq!(arrived["version"], 10);
    api.eventually(
        &incoming_path,
        &people.secondary,
        "an arrived child leaves the incoming cohort",
        |list| !lists(list, &amira),
    )
    .await;
    let summary = api.get_ok(&format!("/api/v1/children/{amira}"), la).await;
    assert_eq!(summary["school_urn"], SECONDARY);
    assert_eq!(summary["destination_urn"], SECONDARY);
    assert_eq!(summary["version"], 10);
    assert_eq!(summary["flags"], json!([]));
    amira
}

/// A day-one no-show opens the CME track; the enquiries' deadline passes; the child turns up
/// late and everything clears.
async fn a_day_one_no_show_resolved_by_a_late_arrival(api: &Api, people: &People) -> String {
    let la = people.la.as_str();
    // Registered by the LA this time, on the primary's roll.
    let ben = api
        .register(la, &pupil(2, "Ben", "Okafor", Some(PRIMARY)))
        .await;
    api.command(
        &ben,
        la,
        &json!({"type": "AllocatePupil", "school_urn": SECONDARY}),
    )
    .await;

    let no_show = api
        .command(
            &ben,
            &people.secondary,
            &json!({"type": "RecordNoShow", "school_urn": SECONDARY, "date": days_ago(20)}),
        )
        .await;
    assert_eq!(event_types(&no_show["events"]), ["NoShowOnDayOne"]);
    assert_eq!(no_show["events"][0]["track"]["opened"], true);
    let listed = appears(api, la, &ben, "day_one_no_show").await;
    assert_eq!(listed["since"], days_ago(20));
    // Twenty days on, the school's enquiries and referral (due within ten school days) are late.
    appears(api, la, &ben, "overdue_track_step").await;

    let report_path = format!("/api/v1/reports/day-one-no-shows?la={LA}");
    let report = api
        .eventually(&report_path, la, "the no-show is reported", |list| {
            lists(list, &ben)
        })
        .await;
    let row = item(&report, &ben).expect("listed");
    assert_eq!(row["school_urn"], SECONDARY);
    assert_eq!(row["date"], days_ago(20));
    assert_eq!(row["resolved"], false);
    let at_school = api
        .get_ok(&format!("{report_path}&school={SECONDARY}"), la)
        .await;
    assert!(lists(&at_school, &ben), "{at_school}");
    let elsewhere = api
        .get_ok(&format!("{report_path}&school={PRIMARY}"), la)
        .await;
    assert!(!lists(&elsewhere, &ben), "{elsewhere}");

    let arrived = api
        .command(
            &ben,
            &people.secondary,
            &json!({"type": "RecordArrival", "school_urn": SECONDARY, "date": days_ago(15)}),
        )
        .await;
    assert_eq!(arrived["events"][0]["resolved_no_show"], true);
    clears(api, la, &ben, "day_one_no_show").await;
    clears(api, la, &ben, "overdue_track_step").await;
    let report = api
        .eventually(&report_path, la, "the no-show is resolved", |list| {
            item(list, &ben).is_some_and(|row| row["resolved"] == true)
        })
        .await;
    assert_eq!(
        item(&report, &ben).expect("listed")["resolved_on"],
        days_ago(15)
    );
    ben
}

/// A no-show the school cannot trace: reported missing, a CME referral refused until the
/// enquiries are logged, accepted by the LA, and closed when the child is located.
async fn a_no_show_becomes_a_cme_case_and_the_child_is_located(
    api: &Api,
    people: &People,
) -> String {
    let la = people.la.as_str();
    let secondary = people.secondary.as_str();
    let chloe = api
        .register(&people.primary, &pupil(3, "Chloe", "Evans", Some(PRIMARY)))
        .await;
    api.command(
        &chloe,
        la,
        &json!({"type": "AllocatePupil", "school_urn": SECONDARY}),
    )
    .await;
    api.command(
        &chloe,
        secondary,
        &json!({"type": "RecordNoShow", "school_urn": SECONDARY, "date": days_ago(20)}),
    )
    .await;
    appears(api, la, &chloe, "day_one_no_show").await;
    appears(api, la, &chloe, "overdue_track_step").await;

    api.command(
        &chloe,
        secondary,
        &json!({"type": "ReportChildMissing", "since": days_ago(20), "circumstances": "not seen since the summer; phone disconnected"}),
    )
    .await;
    appears(api, la, &chloe, "reported_missing").await;

    // No referral without reasonable enquiries, and a refusal appends nothing.
    let before = api.history(&chloe, la).await.len();
    let referral = json!({"type": "RaiseCmeReferral", "reason": "not traced after enquiries"});
    let refused = api.send(&chloe, secondary, &referral).await;
    let problem = refused.problem(422, "enquiries_incomplete");
    assert!(
        problem["detail"].as_str().is_some_and(
            |detail| detail.contains("contact attempt") && detail.contains("home visit")
        ),
        "the refusal says what is missing: {problem}"
    );
    assert_eq!(api.history(&chloe, la).await.len(), before);

    let contact = api
        .command(
            &chloe,
            secondary,
            &json!({"type": "LogContactAttempt", "method": "phone", "outcome": "no_answer", "notes": "number unobtainable", "made_on": days_ago(19)}),
        )
        .await;
    assert_eq!(event_types(&contact["events"]), ["ContactAttemptLogged"]);
    let visit = api
        .command(
            &chloe,
            secondary,
            &json!({"type": "LogHomeVisit", "visited_on": days_ago(18), "outcome": "property_empty", "notes": "neighbours say the family left"}),
        )
        .await;
    assert_eq!(event_types(&visit["events"]), ["HomeVisitLogged"]);

    let raised = api.command(&chloe, secondary, &referral).await;
    assert_eq!(event_types(&raised["events"]), ["CmeReferralRaised"]);
    assert_eq!(raised["events"][0]["contact_attempts"], 1);
    assert_eq!(raised["events"][0]["home_visits"], 1);
    appears(api, la, &chloe, "cme_referral_open").await;
    // The overdue step was the referral itself; the LA's decision is not due yet.
    clears(api, la, &chloe, "overdue_track_step").await;

    // Accepting a referral is the LA's decision, not the school's.
    let accept = json!({"type": "AcceptCmeReferral", "notes": "open CME case"});
    api.send(&chloe, secondary, &accept)
        .await
        .problem(403, "forbidden");
    let accepted = api.command(&chloe, la, &accept).await;
    assert_eq!(event_types(&accepted["events"]), ["CmeReferralAccepted"]);
    appears(api, la, &chloe, "cme_referral_open").await;

    let located = api
        .command(
            &chloe,
            la,
            &json!({"type": "RecordChildLocated", "outcome": "on_roll", "school_urn": SECONDARY, "notes": "found living with an aunt; attending from Monday"}),
        )
        .await;
    assert_eq!(event_types(&located["events"]), ["ChildLocated"]);
    for reason in ["cme_referral_open", "reported_missing", "day_one_no_show"] {
        clears(api, la, &chloe, reason).await;
    }
    api.eventually(
        &format!("/api/v1/reports/day-one-no-shows?la={LA}"),
        la,
        "locating the child resolves the no-show",
        |list| item(list, &chloe).is_some_and(|row| row["resolved"] == true),
    )
    .await;
    chloe
}

/// Removed from roll on ground (g) with no destination: a child missing education until
/// the LA locates them.
async fn a_removal_without_destination_until_the_child_is_located(
    api: &Api,
    people: &People,
) -> String {
    let la = people.la.as_str();
    let dev = api
        .register(&people.primary, &pupil(4, "Dev", "Patel", Some(PRIMARY)))
        .await;
    let removed = api
        .command(
            &dev,
            &people.primary,
            &json!({"type": "RemoveFromRoll", "school_urn": PRIMARY, "ground": "g", "date": today().to_string()}),
        )
        .await;
    assert_eq!(event_types(&removed["events"]), ["RemovedFromRoll"]);
    assert_eq!(removed["events"][0]["without_destination"], true);
    appears(api, la, &dev, "removed_without_destination").await;

    api.command(
        &dev,
        la,
        &json!({"type": "RecordChildLocated", "outcome": "elective_home_education", "notes": "written notice received"}),
    )
    .await;
    clears(api, la, &dev, "removed_without_destination").await;
    dev
}

/// Children left open at the end of the story, so the lists a rebuild must reproduce are not
/// empty: one with no place and an appeal pending, one still missing since day one, one
/// heading to the secondary with transition information shared.
async fn children_still_needing_attention(api: &Api, people: &People) -> Vec<String> {
    let la = people.la.as_str();
    let farah = api.register(la, &pupil(5, "Farah", "Ali", None)).await;
    api.command(&farah, la, &json!({"type": "RecordNoAllocation"}))
        .await;
    api.command(
        &farah,
        la,
        &json!({"type": "LodgeAppeal", "school_urn": APPEAL_SCHOOL}),
    )
    .await;

    let george = api
        .register(&people.primary, &pupil(6, "George", "Byrne", Some(PRIMARY)))
        .await;
    api.command(
        &george,
        la,
        &json!({"type": "AllocatePupil", "school_urn": SECONDARY}),
    )
    .await;
    api.command(
        &george,
        &people.secondary,
        &json!({"type": "RecordNoShow", "school_urn": SECONDARY, "date": days_ago(20)}),
    )
    .await;

    let ella = api
        .register(&people.primary, &pupil(7, "Ella", "Jones", Some(PRIMARY)))
        .await;
    api.command(
        &ella,
        la,
        &json!({"type": "AllocatePupil", "school_urn": SECONDARY}),
    )
    .await;
    api.command(
        &ella,
        &people.primary,
        &json!({"type": "ShareTransitionInfo", "school_urn": SECONDARY, "sen": "K", "summary": "dyslexia; uses a reading ruler"}),
    )
    .await;

    let farah_listed = appears(api, la, &farah, "appeal_pending").await;
    // Both started today; reasons are ordered by start date, then name.
    assert_eq!(
        farah_listed["reasons"],
        json!(["appeal_pending", "no_destination"])
    );
    let george_listed = appears(api, la, &george, "overdue_track_step").await;
    assert_eq!(
        george_listed["reasons"],
        json!(["day_one_no_show", "overdue_track_step"])
    );
    api.eventually(
        &format!("/api/v1/schools/{SECONDARY}/incoming"),
        &people.secondary,
        "the incoming cohort shows Ella's transition information",
        |list| item(list, &ella).is_some_and(|child| child["transition_info"]["sen"] == "K"),
    )
    .await;
    vec![farah, george, ella]
}

/// The history follows the child from the primary through the LA to the secondary, oldest
/// first, with who did each thing; as of a past moment it shows only what was recorded by
/// then, over HTTP and from `rollcall replay` alike.
async fn history_follows_the_child_across_schools_and_replays_as_of_a_moment(
    api: &Api,
    people: &People,
    amira: &str,
) {
    // The secondary, where the child now is, sees what the primary and the LA recorded.
    let events = api.history(amira, &people.secondary).await;
    assert_eq!(
        event_types(&Value::Array(events.clone())),
        [
            "ChildRegistered",
            "NoPlaceAllocated",
            "AppealLodged",
            "PupilAllocated",
            "AppealDecided",
            "PupilAllocated",
            "DestinationChanged",
            "DestinationConfirmed",
            "TransitionInfoShared",
            "PupilArrived",
        ]
    );
    let primary = ("primary-office", "school", PRIMARY);
    let la = ("cme-team", "la", LA);
    let secondary = ("secondary-office", "school", SECONDARY);
    let actors = [primary, la, la, la, la, la, la, primary, primary, secondary];
    let mut last_position = 0;
    for (index, (event, (name, role, org))) in events.iter().zip(actors).enumerate() {
        assert_eq!(event["sequence"], index + 1, "{event}");
        let position = event["position"].as_i64().expect("a position");
        assert!(position > last_position, "positions grow: {event}");
        last_position = position;
        assert!(event["data"].is_object(), "{event}");
        instant(&event["recorded_at"]);
        assert_eq!(
            event["actor"],
            json!({"name": name, "role": role, "org": org}),
            "who recorded {event}"
        );
    }
    assert_eq!(events[6]["data"]["from_urn"], APPEAL_SCHOOL);
    assert_eq!(events[6]["data"]["to_urn"], SECONDARY);
    // The same history for the LA and for the auditor.
    assert_eq!(api.history(amira, &people.la).await, events);
    assert_eq!(api.history(amira, &people.auditor).await, events);

    // As of a moment between the destination change (7) and the confirmation (8).
    let changed_at = instant(&events[6]["recorded_at"]);
    let confirmed_at = instant(&events[7]["recorded_at"]);
    assert!(
        changed_at < confirmed_at,
        "the two commands were recorded apart"
    );
    let as_of = (changed_at + (confirmed_at - changed_at) / 2)
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let path = format!("/api/v1/children/{amira}/history?as_of={as_of}");
    let then = api.get_ok(&path, &people.auditor).await;
    assert_eq!(then["events"], Value::Array(events[..7].to_vec()));
    assert_eq!(then["state"]["destination_urn"], SECONDARY);
    assert_eq!(then["state"]["destination_confirmed"], false);
    assert_eq!(then["state"]["school_urn"], PRIMARY);
    assert_eq!(then["state"]["version"], 7);
    assert_eq!(
        api.get_ok(&path, &people.la).await["events"],
        then["events"]
    );
    // Replaying a past moment is for the LA and auditors, not schools.
    api.get(&path, &people.secondary)
        .await
        .problem(403, "forbidden");

    let replayed: Value = serde_json::from_str(&api.cli(&["replay", amira, "--as-of", &as_of]))
        .expect("`rollcall replay` prints JSON");
    assert_eq!(replayed["child_id"], amira);
    assert_eq!(replayed["events"], then["events"]);
    assert_eq!(replayed["state"], then["state"]);
    let everything: Value =
        serde_json::from_str(&api.cli(&["replay", amira])).expect("`rollcall replay` prints JSON");
    assert_eq!(everything["events"], Value::Array(events));
}

/// Views through the API (and the CLI's replay) are in the child's access log.
async fn the_access_log_records_who_viewed_the_record(api: &Api, people: &People, amira: &str) {
    api.get_ok(&format!("/api/v1/children/{amira}"), &people.la)
        .await;
    let log = api
        .get_ok(
            &format!("/api/v1/children/{amira}/access-log"),
            &people.auditor,
        )
        .await;
    assert_eq!(log["child_id"], amira);
    let entries = items(&log);
    let has = |name: &str, role: &str, endpoint: &str, action: &str| {
        entries.iter().any(|entry| {
            entry["actor"]["name"] == name
                && entry["actor"]["role"] == role
                && entry["endpoint"] == endpoint
                && entry["action"] == action
        })
    };
    assert!(
        has("cme-team", "la", "GET /api/v1/children/{child_id}", "view"),
        "the LA's view is logged: {log}"
    );
    assert!(
        has(
            "secondary-office",
            "school",
            "GET /api/v1/children/{child_id}/history",
            "view"
        ),
        "the secondary's history read is logged: {log}"
    );
    assert!(
        has(
            "safeguarding-review",
            "auditor",
            "GET /api/v1/children/{child_id}/history",
            "replay"
        ),
        "the auditor's as-of replay is logged: {log}"
    );
    assert!(
        has("rollcall-cli", "system", "rollcall replay", "replay"),
        "the CLI replay is logged: {log}"
    );
    assert!(
        has(
            "primary-office",
            "school",
            "POST /api/v1/children",
            "command"
        ),
        "the registration is logged: {log}"
    );
    for entry in entries {
        instant(&entry["at"]);
        assert!(entry["actor"]["org"].is_string(), "{entry}");
    }
    // The auditor's own read of the log is logged too, for the next reader.
    let again = api
        .get_ok(&format!("/api/v1/children/{amira}/access-log"), &people.la)
        .await;
    assert!(items(&again).iter().any(|entry| {
        entry["actor"]["name"] == "safeguarding-review"
            && entry["endpoint"] == "GET /api/v1/children/{child_id}/access-log"
    }));
}

/// `Accept: text/csv` turns the watchlist and both reports into CSV with a header row, and the
/// export is logged.
async fn reports_and_watchlist_export_as_csv(
    api: &Api,
    people: &People,
    amira: &str,
    ben: &str,
    still_open: &[String],
) {
    let csv = |path: String| {
        let token = people.la.clone();
        async move {
            let reply = api
                .call(
                    Method::GET,
                    &path,
                    Some(&token),
                    None,
                    &[("accept", "text/csv")],
                )
                .await;
            assert_eq!(reply.status.as_u16(), 200, "{path}: {}", reply.text);
            assert!(
                reply.content_type.starts_with("text/csv"),
                "{path} is CSV: {}",
                reply.content_type
            );
            reply.text
        }
    };
    let watchlist = csv(format!("/api/v1/watchlist?la={LA}")).await;
    assert_eq!(
        watchlist.lines().next(),
        Some(
            "child_id,upn,given_name,family_name,la_code,school_urn,destination_urn,reasons,since"
        )
    );
    let farah = &still_open[0];
    let row = watchlist
        .lines()
        .find(|line| line.starts_with(farah.as_str()))
        .unwrap_or_else(|| panic!("the CSV lists {farah}: {watchlist}"));
    assert!(row.contains(&upn(5)) && row.contains("Farah"), "{row}");

    let changes = csv(format!("/api/v1/reports/destination-changes?la={LA}")).await;
    assert_eq!(
        changes.lines().next(),
        Some("child_id,la_code,from_urn,to_urn,reason,changed_on,changed_at")
    );
    assert!(
        changes.lines().any(|line| line.starts_with(amira)
            && line.contains(&format!("{LA},{APPEAL_SCHOOL},{SECONDARY},"))),
        "{changes}"
    );

    let no_shows = csv(format!("/api/v1/reports/day-one-no-shows?la={LA}")).await;
    assert_eq!(
        no_shows.lines().next(),
        Some("child_id,school_urn,la_code,date,resolved,resolved_on")
    );
    assert!(
        no_shows.lines().any(|line| line
            == format!(
                "{ben},{SECONDARY},{LA},{},true,{}",
                days_ago(20),
                days_ago(15)
            )),
        "{no_shows}"
    );

    let log = api
        .get_ok(&format!("/api/v1/children/{farah}/access-log"), &people.la)
        .await;
    assert!(
        items(&log).iter().any(
            |entry| entry["endpoint"] == "GET /api/v1/watchlist" && entry["action"] == "export"
        ),
        "the watchlist export is logged for each child in it: {log}"
    );
}

/// Every list pages with `limit` and `cursor`: walking the pages one item at a time gives
/// the whole list, in order, and the last page has no `next_cursor`.
async fn lists_come_in_pages(api: &Api, people: &People) {
    for path in [
        format!("/api/v1/watchlist?la={LA}"),
        format!("/api/v1/reports/day-one-no-shows?la={LA}"),
        format!("/api/v1/reports/destination-changes?la={LA}"),
        format!("/api/v1/schools/{SECONDARY}/incoming"),
    ] {
        let with = |query: &str| {
            let separator = if path.contains('?') { '&' } else { '?' };
            format!("{path}{separator}{query}")
        };
        let whole = api.get_ok(&path, &people.la).await;
        assert_eq!(whole["next_cursor"], Value::Null, "{path}: {whole}");
        let mut walked = Vec::new();
        let mut page = api.get_ok(&with("limit=1"), &people.la).await;
        loop {
            let found = items(&page);
            assert!(
                found.len() <= 1,
                "{path}: a page holds at most `limit` items: {page}"
            );
            walked.extend(found.iter().cloned());
            let Some(cursor) = page["next_cursor"].as_str() else {
                break;
            };
            assert!(walked.len() < 100, "{path}: the pages end");
            page = api
                .get_ok(&with(&format!("limit=1&cursor={cursor}")), &people.la)
                .await;
        }
        assert_eq!(walked, items(&whole), "{path}: the pages make up the list");
        assert!(!walked.is_empty(), "{path} has something to page through");
    }
    api.get(&format!("/api/v1/watchlist?la={LA}&limit=0"), &people.la)
        .await
        .problem(422, "invalid_limit");
}

/// Stop the service, rebuild every projection from the log with the CLI, start again: the
/// watchlist, both reports and the incoming cohort are exactly what they were.
async fn a_rebuild_leaves_every_list_the_same(api: &mut Api, people: &People) {
    let paths = [
        format!("/api/v1/watchlist?la={LA}"),
        format!("/api/v1/watchlist?la={LA}&reason=overdue_track_step"),
        format!("/api/v1/reports/destination-changes?la={LA}"),
        format!("/api/v1/reports/day-one-no-shows?la={LA}"),
        format!("/api/v1/schools/{SECONDARY}/incoming"),
    ];
    api.projections_caught_up().await;
    let mut before = Vec::new();
    for path in &paths {
        let list = api.get_ok(path, &people.la).await;
        assert!(!items(&list).is_empty(), "{path} has something to rebuild");
        before.push(list);
    }

    api.stop();
    let rebuilt = api.cli(&["projections", "rebuild"]);
    for name in [
        "child_cases",
        "destination_changes",
        "day_one_no_shows",
        "timeline",
    ] {
        assert!(
            rebuilt.contains(&format!("rebuilt {name}:")),
            "`rollcall projections rebuild` reports {name}: {rebuilt}"
        );
    }
    api.restart().await;
    api.projections_caught_up().await;

    for (path, before) in paths.iter().zip(before) {
        let after = api.get_ok(path, &people.la).await;
        assert_eq!(after, before, "{path} is the same after a rebuild");
    }
}
