mod harness_selftest;
mod store_contract;
