//! The client side of the end-to-end tests: a running `rollcall serve`, tokens made with the
//! real CLI, plain HTTP calls, and a poll for read models that catch up in the background.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use domain::values::check_letter;
use reqwest::{Method, StatusCode};
use rollcall_tests::bin::{Server, run_cli};
use serde_json::Value;

/// The LA every scenario's children belong to, and a neighbouring one.
pub const LA: &str = "330";
pub const OTHER_LA: &str = "331";
/// The primary school the children leave, the secondary they join, the school an appeal
/// is lodged for, and a school that has nothing to do with them.
pub const PRIMARY: &str = "100001";
pub const SECONDARY: &str = "100002";
pub const APPEAL_SCHOOL: &str = "100003";
pub const OTHER_SCHOOL: &str = "100009";

/// How long a read model may take to show a write (the projector wakes within ~0.5 s).
const CATCH_UP: Duration = Duration::from_secs(15);

/// Today, as the server decides it (UTC).
pub fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// `days` days before today, as `YYYY-MM-DD`.
pub fn days_ago(days: u64) -> String {
    (today() - chrono::Days::new(days)).to_string()
}

/// A valid, permanent UPN in LA 330, distinct for each `n`.
pub fn upn(n: u32) -> String {
    let body = format!("330{n:09}");
    let letter = char::from(check_letter(body.as_bytes()));
    format!("{letter}{body}")
}

/// The same UPN with a wrong check letter.
pub fn upn_with_wrong_check_letter(n: u32) -> String {
    let good = upn(n);
    let wrong = if good.starts_with('A') { 'B' } else { 'A' };
    format!("{wrong}{}", &good[1..])
}

/// One HTTP response, read to the end.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub www_authenticate: Option<String>,
    pub text: String,
    /// What was asked, for failure messages.
    pub asked: String,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|error| {
            panic!("{}: body is not JSON ({error}): {}", self.asked, self.text)
        })
    }

    /// Asserts the status and returns the JSON body.
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{} answered {} with {}",
            self.asked,
            self.status,
            self.text
        );
        self.json()
    }

    /// Asserts an RFC 9457 problem document with this status and code, and returns it.
    pub fn problem(&self, status: u16, code: &str) -> Value {
        let body = self.expect(status);
        assert_eq!(
            self.content_type, "application/problem+json",
            "{}: a problem is application/problem+json",
            self.asked
        );
        assert_eq!(body["code"], code, "{}: {body}", self.asked);
        assert_eq!(body["status"], status, "{}: {body}", self.asked);
        assert_eq!(
            body["type"],
            format!("/problems/{code}"),
            "{}: {body}",
            self.asked
        );
        for field in ["title", "detail"] {
            assert!(
                body[field].as_str().is_some_and(|text| !text.is_empty()),
                "{}: a problem has a {field}: {body}",
                self.asked
            );
        }
        body
    }
}

/// `items` of a list response.
pub fn items(list: &Value) -> &[Value] {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a list response has items: {list}"))
}

/// The item about this child, if the list has one.
pub fn item<'a>(list: &'a Value, child_id: &str) -> Option<&'a Value> {
    items(list).iter().find(|item| item["child_id"] == child_id)
}

/// Whether the list shows this child.
pub fn lists(list: &Value, child_id: &str) -> bool {
    item(list, child_id).is_some()
}

/// The `type` of each event in a command response or a history.
pub fn event_types(events: &Value) -> Vec<String> {
    events
        .as_array()
        .unwrap_or_else(|| panic!("events are a list: {events}"))
        .iter()
        .map(|event| event["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A timestamp from the API (RFC 3339).
pub fn instant(raw: &Value) -> DateTime<Utc> {
    raw.as_str()
        .and_then(|raw| DateTime::parse_from_rfc3339(raw).ok())
        .unwrap_or_else(|| panic!("{raw} is an RFC 3339 time"))
        .with_timezone(&Utc)
}

/// A running server, the database behind it, and an HTTP client.
#[derive(Debug)]
pub struct Api {
    pub database_url: String,
    server: Option<Server>,
    client: reqwest::Client,
}

impl Api {
    /// Migrates the database and starts `rollcall serve` on a free port.
    pub async fn start(database_url: &str) -> Self {
        let server = Server::start(database_url, &[]).await;
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a plain HTTP client always builds");
        Self {
            database_url: database_url.to_owned(),
            server: Some(server),
            client,
        }
    }

    /// Kills the server (the database stays).
    pub fn stop(&mut self) {
        self.server = None;
    }

    /// Starts a new server on the same database.
    pub async fn restart(&mut self) {
        self.stop();
        self.server = Some(Server::start(&self.database_url, &[]).await);
    }

    fn url(&self, path: &str) -> String {
        self.server
            .as_ref()
            .expect("the server is running")
            .url(path)
    }

    /// Runs the CLI against the same database; asserts success and returns standard output.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = run_cli(&self.database_url, args);
        assert!(
            output.status.success(),
            "`rollcall {}` failed ({}):\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("the CLI writes UTF-8")
    }

    /// `rollcall token create`; returns the token (the last line of standard output).
    pub fn token(&self, name: &str, role: &str, scope: &[&str]) -> String {
        let mut args = vec!["token", "create", "--name", name, "--role", role];
        args.extend_from_slice(scope);
        let stdout = self.cli(&args);
        let token = stdout.lines().last().unwrap_or_default().trim().to_owned();
        assert!(
            token.len() >= 32,
            "a token is printed on the last line: {stdout:?}"
        );
        token
    }

    /// Creates several tokens at once (each is one CLI process): `(name, role, scope)`.
    pub fn tokens<const N: usize>(&self, specs: [(&str, &str, &[&str]); N]) -> [String; N] {
        std::thread::scope(|scope| {
            let handles =
                specs.map(|(name, role, args)| scope.spawn(move || self.token(name, role, args)));
            handles.map(|handle| handle.join().expect("token creation does not panic"))
        })
    }

    /// Any request; `headers` are added as given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let asked = format!("{method} {path}");
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|error| panic!("{asked}: {error}"));
        let header = |name: reqwest::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(reqwest::header::CONTENT_TYPE).unwrap_or_default();
        let www_authenticate = header(reqwest::header::WWW_AUTHENTICATE);
        let status = response.status();
        let text = response
            .text()
            .await
            .unwrap_or_else(|error| panic!("{asked}: reading the body: {error}"));
        Reply {
            status,
            content_type,
            www_authenticate,
            text,
            asked,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None, &[]).await
    }

    /// A GET that must answer 200 with JSON.
    pub async fn get_ok(&self, path: &str, token: &str) -> Value {
        self.get(path, token).await.expect(200)
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body.to_string()), &[])
            .await
    }

    /// `POST /api/v1/children`; asserts 201 and returns the new child's id.
    pub async fn register(&self, token: &str, body: &Value) -> String {
        let created = self.post("/api/v1/children", token, body).await.expect(201);
        assert_eq!(
            created["version"], 1,
            "a new record is at version 1: {created}"
        );
        created["child_id"]
            .as_str()
            .unwrap_or_else(|| panic!("a registration answers with child_id: {created}"))
            .to_owned()
    }

    /// `POST /api/v1/children/{child_id}/commands`.
    pub async fn send(&self, child_id: &str, token: &str, command: &Value) -> Reply {
        self.post(
            &format!("/api/v1/children/{child_id}/commands"),
            token,
            command,
        )
        .await
    }

    /// A command that must be accepted; returns `{child_id, version, events}`.
    pub async fn command(&self, child_id: &str, token: &str, command: &Value) -> Value {
        let done = self.send(child_id, token, command).await.expect(200);
        assert_eq!(done["child_id"], child_id, "{done}");
        done
    }

    /// The child's history events (oldest first), as `token` sees them.
    pub async fn history(&self, child_id: &str, token: &str) -> Vec<Value> {
        let history = self
            .get_ok(&format!("/api/v1/children/{child_id}/history"), token)
            .await;
        history["events"]
            .as_array()
            .unwrap_or_else(|| panic!("a history has events: {history}"))
            .clone()
    }

    /// Polls a GET until `holds` is true of its JSON body, and returns that body.
    ///
    /// # Panics
    ///
    /// If the GET fails, or `holds` is still false after [`CATCH_UP`].
    pub async fn eventually(
        &self,
        path: &str,
        token: &str,
        what: &str,
        holds: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + CATCH_UP;
        loop {
            let body = self.get_ok(path, token).await;
            if holds(&body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "GET {path}: still not true after {CATCH_UP:?} that {what}; last body: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every projection has applied every event (`/ready` shows no lag), and
    /// returns the readiness document.
    pub async fn projections_caught_up(&self) -> Value {
        let deadline = tokio::time::Instant::now() + CATCH_UP;
        loop {
            let ready = self.call(Method::GET, "/ready", None, None, &[]).await;
            let body = ready.json();
            let caught_up = body["projections"].as_array().is_some_and(|all| {
                !all.is_empty() && all.iter().all(|projection| projection["lag_events"] == 0)
            });
            if ready.status == StatusCode::OK && caught_up {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "projections did not catch up within {CATCH_UP:?}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
