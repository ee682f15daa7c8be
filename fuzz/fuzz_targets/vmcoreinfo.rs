#![no_main]
use crashdeck::dump::VmcoreInfo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let v = VmcoreInfo::parse(&text);
    let _ = v.get("OSRELEASE");
    let _ = v.symbol("init_uts_ns");
    let _ = v.number("PAGESIZE");
    let _ = v.kernel_offset();
    for (k, _) in v.entries.iter().take(16) {
        let _ = v.number(k);
        if let Some(name) = k.strip_prefix("SYMBOL(").and_then(|s| s.strip_suffix(')')) {
            let _ = v.symbol(name);
        }
    }
});
