// sqlx embeds the migrations at compile time; a new file in `migrations/`
// must rebuild the crate (sqlx's documented build script).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
