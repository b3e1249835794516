//! Bearer tokens, roles and scopes, and the access log.
//!
//! A token is 128+ random bits shown once at creation; only its SHA-256 hash
//! is stored. Each token has one role and one scope (an LA code, a URN, or
//! all). See docs/security.md.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use domain::{ChildCase, ChildCommand, LaCode, Urn};
use projections::{Actor, Database};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::AppState;
use crate::error::ApiError;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    La,
    School,
    Auditor,
    Analyst,
}

impl Role {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "la" => Some(Self::La),
            "school" => Some(Self::School),
            "auditor" => Some(Self::Auditor),
            "analyst" => Some(Self::Analyst),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::La => "la",
            Self::School => "school",
            Self::Auditor => "auditor",
            Self::Analyst => "analyst",
        }
    }
}

/// Why a token cannot be created.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("unknown role {0:?}: use la, school, auditor or analyst")]
    UnknownRole(String),
    #[error("role {0} needs --la CODE")]
    NeedsLa(&'static str),
    #[error("role school needs --school URN")]
    NeedsSchool,
    #[error("role {0} takes no --school")]
    NoSchool(&'static str),
    #[error("invalid --la: {0}")]
    BadLa(String),
    #[error("invalid --school: {0}")]
    BadSchool(String),
    #[error("a token name is 1 to 100 characters of letters, digits, '-', '_' or '.'")]
    BadName,
    #[error("a token named {0:?} already exists")]
    NameTaken(String),
    #[error("no active token is named {0:?}")]
    NoSuchToken(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
    /// The LA scope; `None` for a school, or for an auditor or analyst scoped to all.
    pub la: Option<LaCode>,
    pub school: Option<Urn>,
}

impl Caller {
    /// The organisation recorded with everything this caller does.
    pub fn org(&self) -> String {
        match (&self.school, &self.la) {
            (Some(urn), _) => urn.to_string(),
            (None, Some(la)) => la.to_string(),
            (None, None) => "all".to_owned(),
        }
    }

    pub fn actor(&self) -> Actor {
        Actor {
            name: self.name.clone(),
            role: self.role.as_str().to_owned(),
            org: self.org(),
        }
    }

    /// Whether this caller may see this child's record at all.
    pub fn can_see(
        &self,
        la_code: &str,
        school_urn: Option<&str>,
        destination_urn: Option<&str>,
    ) -> bool {
        match self.role {
            Role::La | Role::Auditor => self.la.as_ref().is_none_or(|la| la.as_str() == la_code),
            Role::School => {
                let own = self.school.as_ref().map(Urn::as_str);
                own.is_some() && (school_urn == own || destination_urn == own)
            }
            Role::Analyst => false,
        }
    }

    pub fn can_see_case(&self, case: &ChildCase) -> bool {
        case.identity.as_ref().is_some_and(|identity| {
            self.can_see(
                identity.la_code.as_str(),
                case.school_urn.as_ref().map(Urn::as_str),
                case.destination_urn.as_ref().map(Urn::as_str),
            )
        })
    }

    /// Whether this caller's role may send this command (scope is checked
    /// separately, against the child).
    pub fn may_send(&self, command: &ChildCommand) -> Result<(), ApiError> {
        use ChildCommand as C;
        let allowed = match self.role {
            Role::La => true,
            Role::School => matches!(
                command,
                C::RegisterChild { .. }
                    | C::ShareTransitionInfo { .. }
                    | C::RecordTransitionConcern { .. }
                    | C::ConfirmDestination { .. }
                    | C::RecordArrival { .. }
                    | C::RecordNoShow { .. }
                    | C::ReportChildMissing { .. }
                    | C::RemoveFromRoll { .. }
                    | C::LogContactAttempt { .. }
                    | C::LogHomeVisit { .. }
                    | C::RaiseCmeReferral { .. }
                    | C::RecordSuspension { .. }
                    | C::RecordPermanentExclusion { .. }
                    | C::RecordTrackStep { .. }
            ),
            Role::Auditor | Role::Analyst => false,
        };
        if !allowed {
            return Err(ApiError::Forbidden(format!(
                "role {} may not send {}",
                self.role.as_str(),
                command.name()
            )));
        }
        // A school records arrivals, no-shows and removals for itself only,
        // and registers its own pupils.
        if self.role == Role::School {
            let speaks_for_itself = match command {
                C::RecordArrival { school_urn, .. }
                | C::RecordNoShow { school_urn, .. }
                | C::RemoveFromRoll { school_urn, .. } => Some(school_urn),
                C::RegisterChild { school_urn, .. } => school_urn.as_ref(),
                _ => None,
            };
            if let C::RegisterChild {
                school_urn: None, ..
            } = command
            {
                return Err(ApiError::Forbidden(
                    "a school registers its own pupils: school_urn must be your URN".to_owned(),
                ));
            }
            if let Some(urn) = speaks_for_itself {
                if Some(urn) != self.school.as_ref() {
                    return Err(ApiError::Forbidden(format!(
                        "a school token for {} may not act for school {urn}",
                        self.org()
                    )));
                }
            }
        }
        if let (C::RegisterChild { la_code, .. }, Some(la)) = (command, &self.la) {
            if la_code != la {
                return Err(ApiError::Forbidden(format!(
                    "a token scoped to LA {la} may not register a child in LA {la_code}"
                )));
            }
        }
        Ok(())
    }

    /// The LA a list is read for: the caller's own, or the one asked for
    /// when the caller's scope is all.
    pub fn la_scope(&self, asked: Option<&LaCode>) -> Result<Option<LaCode>, ApiError> {
        match (&self.la, asked) {
            (Some(own), Some(asked)) if own != asked => Err(ApiError::Forbidden(format!(
                "your token is scoped to LA {own}, not {asked}"
            ))),
            (Some(own), _) => Ok(Some(own.clone())),
            (None, asked) => Ok(asked.cloned()),
        }
    }

    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "role {} may not {what}",
                self.role.as_str()
            )))
        }
    }
}

/// SHA-256 of a token, hex-encoded: what the database keeps.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A new random token: 244 random bits from the OS generator, via two v4 UUIDs.
fn new_token() -> String {
    format!(
        "rc_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Creates a token and returns it; only its hash is stored.
pub async fn create_token(
    db: &Database,
    name: &str,
    role: &str,
    la: Option<&str>,
    school: Option<&str>,
) -> Result<String, TokenError> {
    let valid_name = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid_name {
        return Err(TokenError::BadName);
    }
    let role = Role::parse(role).ok_or_else(|| TokenError::UnknownRole(role.to_owned()))?;
    let la = la
        .map(|raw| LaCode::parse(raw).map_err(|e| TokenError::BadLa(e.to_string())))
        .transpose()?;
    let school = school
        .map(|raw| Urn::parse(raw).map_err(|e| TokenError::BadSchool(e.to_string())))
        .transpose()?;
    match role {
        Role::La if la.is_none() => return Err(TokenError::NeedsLa("la")),
        Role::School if school.is_none() => return Err(TokenError::NeedsSchool),
        Role::La | Role::Auditor | Role::Analyst if school.is_some() => {
            return Err(TokenError::NoSchool(role.as_str()));
        }
        _ => {}
    }
    let exists: Option<String> = sqlx::query_scalar("select name from api_tokens where name = $1")
        .bind(name)
        .fetch_optional(db.any())
        .await?;
    if exists.is_some() {
        return Err(TokenError::NameTaken(name.to_owned()));
    }
    let token = new_token();
    sqlx::query(
        "insert into api_tokens (name, token_hash, role, la_code, school_urn, created_at) values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(name)
    .bind(hash_token(&token))
    .bind(role.as_str())
    .bind(la.as_ref().map(LaCode::as_str))
    .bind(school.as_ref().map(Urn::as_str))
    .bind(now_text())
    .execute(db.any())
    .await?;
    Ok(token)
}

/// A token as listed (never the token itself).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenInfo {
    pub name: String,
    pub role: String,
    pub la_code: Option<String>,
    pub school_urn: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

pub async fn list_tokens(db: &Database) -> Result<Vec<TokenInfo>, TokenError> {
    let rows = sqlx::query(
        "select name, role, la_code, school_urn, created_at, revoked_at from api_tokens order by name",
    )
    .fetch_all(db.any())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(TokenInfo {
                name: row.try_get("name")?,
                role: row.try_get("role")?,
                la_code: row.try_get("la_code")?,
                school_urn: row.try_get("school_urn")?,
                created_at: row.try_get("created_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        })
        .collect()
}

pub async fn revoke_token(db: &Database, name: &str) -> Result<(), TokenError> {
    let revoked =
        sqlx::query("update api_tokens set revoked_at = $1 where name = $2 and revoked_at is null")
            .bind(now_text())
            .bind(name)
            .execute(db.any())
            .await?;
    if revoked.rows_affected() == 0 {
        return Err(TokenError::NoSuchToken(name.to_owned()));
    }
    Ok(())
}

fn now_text() -> String {
    projections::store::timestamp(chrono::Utc::now())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .ok_or(ApiError::Unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let row = sqlx::query(
            "select name, role, la_code, school_urn from api_tokens where token_hash = $1 and revoked_at is null",
        )
        .bind(hash_token(token))
        .fetch_optional(state.db.any())
        .await?
        .ok_or(ApiError::Unauthorized)?;
        let role: String = row.try_get("role")?;
        let la: Option<String> = row.try_get("la_code")?;
        let school: Option<String> = row.try_get("school_urn")?;
        let caller = Self {
            name: row.try_get("name")?,
            role: Role::parse(&role)
                .ok_or_else(|| ApiError::internal("a stored token has an unknown role"))?,
            la: la
                .map(|code| LaCode::parse(&code))
                .transpose()
                .map_err(ApiError::internal)?,
            school: school
                .map(|urn| Urn::parse(&urn))
                .transpose()
                .map_err(ApiError::internal)?,
        };
        tracing::Span::current().record("actor", caller.name.as_str());
        Ok(caller)
    }
}

/// Appends to the access log one row per child shown (none shown: one row
/// with no child). Part of the request: a failure here fails the request,
/// so nothing is shown unlogged.
pub async fn log_access(
    db: &Database,
    actor: &Actor,
    children: &[&str],
    endpoint: &str,
    action: &str,
    request_id: &str,
) -> Result<(), sqlx::Error> {
    let mut ids: Vec<Option<&str>> = children.iter().map(|id| Some(*id)).collect();
    if ids.is_empty() {
        ids.push(None);
    }
    for chunk in ids.chunks(500) {
        let mut sql = String::from(
            "insert into access_log (actor_name, actor_role, actor_org, child_id, endpoint, action, request_id) values ",
        );
        for (i, _) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            let base = i * 7;
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                base + 1,
                base + 2,
                base + 3,
                base + 4,
                base + 5,
                base + 6,
                base + 7
            ));
        }
        let mut query = sqlx::query(&sql);
        for child in chunk {
            query = query
                .bind(actor.name.as_str())
                .bind(actor.role.as_str())
                .bind(actor.org.as_str())
                .bind(*child)
                .bind(endpoint)
                .bind(action)
                .bind(request_id);
        }
        query.execute(db.any()).await?;
    }
    Ok(())
}
