//! The PE loader and the whole graph builder on arbitrary files (seed with
//! corpus/out/mingw/*.exe).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = talos_cfg::pe::load(data) {
        let _ = image.code_ranges();
        let _ = image.build_id_hex();
        if let Ok(cfg) = talos_cfg::analyze(&image, &talos_cfg::Options::default()) {
            for f in &cfg.functions {
                let _ = cfg.function_containing(f.addr);
            }
            let _ = talos_cfg::schema::CfgDoc::new(&cfg, "fuzz", "", None);
        }
    }
});
