//! `rollcall demo`: a synthetic local authority through one school year.

use crate::AppState;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// How many Year 6 children to create.
    #[arg(long, default_value_t = 200)]
    pub children: u32,
    /// The same seed gives the same data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the demo generator is not built yet")]
    NotBuilt,
}

pub async fn run(_state: &AppState, _args: &DemoArgs) -> Result<(), DemoError> {
    Err(DemoError::NotBuilt)
}
