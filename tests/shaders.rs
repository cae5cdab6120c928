//! Every WGSL file parses and validates with naga, as compiled (common.wgsl prepended). No GPU.

use wgsl_gan::gpu::{COMMON, Shader};

fn validate(name: &str, source: &str) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
}

#[test]
fn every_shader_validates_with_naga() {
    validate("common.wgsl", COMMON);
    for shader in Shader::ALL {
        validate(shader.file_name(), &shader.source());
    }
}

#[test]
fn every_file_in_shaders_is_compiled_by_the_runtime() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wgsl") && n != "common.wgsl")
        .collect();
    files.sort();
    let mut known: Vec<String> = Shader::ALL
        .iter()
        .map(|s| s.file_name().to_string())
        .collect();
    known.sort();
    assert_eq!(files, known, "shaders/ and gpu::Shader::ALL disagree");
}
