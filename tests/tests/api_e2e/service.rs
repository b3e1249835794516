//! The operational endpoints: liveness, readiness with each projection's position and lag,
//! the OpenAPI document covering every route, and the browsable API page.

use reqwest::Method;

use super::support::Api;

both_backends!(the_service_reports_health_readiness_and_describes_its_whole_api);

/// Every route the service answers, with its method, as `docs/api.md` and issue 4 fix them.
const ROUTES: [(&str, &str); 14] = [
    ("get", "/health"),
    ("get", "/ready"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/docs"),
    ("post", "/api/v1/children"),
    ("get", "/api/v1/children"),
    ("get", "/api/v1/children/{child_id}"),
    ("post", "/api/v1/children/{child_id}/commands"),
    ("get", "/api/v1/children/{child_id}/history"),
    ("get", "/api/v1/children/{child_id}/access-log"),
    ("get", "/api/v1/watchlist"),
    ("get", "/api/v1/reports/destination-changes"),
    ("get", "/api/v1/reports/day-one-no-shows"),
    ("get", "/api/v1/schools/{urn}/incoming"),
];

async fn the_service_reports_health_readiness_and_describes_its_whole_api(database_url: &str) {
    let api = Api::start(database_url).await;
    let public = |path: &'static str| api.call(Method::GET, path, None, None, &[]);

    let health = public("/health").await.expect(200);
    assert_eq!(health["status"], "ok");

    let ready = public("/ready").await.expect(200);
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["database"], "ok");
    let mut names: Vec<&str> = ready["projections"]
        .as_array()
        .unwrap_or_else(|| panic!("/ready lists the projections: {ready}"))
        .iter()
        .map(|projection| {
            for field in ["position", "head", "lag_events"] {
                assert!(projection[field].is_i64(), "{field}: {projection}");
            }
            assert!(projection["error"].is_null(), "{projection}");
            projection["name"]
                .as_str()
                .expect("a projection has a name")
        })
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "child_cases",
            "day_one_no_shows",
            "destination_changes",
            "timeline"
        ]
    );

    let reply = public("/api/v1/openapi.json").await;
    let openapi = reply.expect(200);
    assert!(
        reply.content_type.starts_with("application/json"),
        "{}",
        reply.content_type
    );
    assert!(
        openapi["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "OpenAPI 3.1: {}",
        openapi["openapi"]
    );
    assert_eq!(openapi["info"]["title"], "Rollcall");
    for (method, path) in ROUTES {
        assert!(
            openapi["paths"][path][method].is_object(),
            "the OpenAPI document describes {method} {path}"
        );
    }
    let command = &openapi["paths"]["/api/v1/children/{child_id}/commands"]["post"]["responses"];
    for status in ["200", "400", "401", "403", "404", "409", "413", "422"] {
        assert!(
            command[status].is_object(),
            "commands document {status}: {command}"
        );
    }
    assert!(openapi["components"]["schemas"]["Problem"].is_object());
    assert!(openapi["components"]["schemas"]["ChildCommand"].is_object());
    assert!(openapi["components"]["securitySchemes"]["bearer"].is_object());

    let page = public("/api/v1/docs").await;
    assert_eq!(page.status.as_u16(), 200);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    assert!(page.text.contains("<html") && page.text.contains("/api/v1/openapi.json"));

    let status = api.cli(&["projections", "status"]);
    for name in names {
        assert!(
            status.contains(name),
            "`rollcall projections status` shows {name}: {status}"
        );
    }
}
