// Migrations are embedded with include_str!; a new or changed file must rebuild.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
