//! `sqlx::migrate!` embeds `../migrations` at compile time, and cargo does not
//! otherwise know the crate depends on those files: rebuild when they change,
//! so a new migration can never be left out of the binary.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
