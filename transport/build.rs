//! Planted bugs for the simulation harness: `MYELON_MUTANT=<name>` compiles this crate (only)
//! with `--cfg myelon_mutant="<name>"`, so a mutant build reuses every dependency already built
//! (`RUSTFLAGS="--cfg myelon_mutant=..."` works too, but rebuilds the world). Unset: nothing.

fn main() {
    println!("cargo:rerun-if-env-changed=MYELON_MUTANT");
    if let Ok(name) = std::env::var("MYELON_MUTANT") {
        let name = name.trim();
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if valid {
            println!("cargo:rustc-cfg=myelon_mutant=\"{name}\"");
        } else {
            println!("cargo:warning=ignoring MYELON_MUTANT={name:?}: not a mutant name");
        }
    }
}
