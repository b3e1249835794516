mod api_e2e;
mod harness_selftest;
mod store_contract;
