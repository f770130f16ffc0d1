//! The WIM codec benchmarks' input: real files from this machine, concatenated.

fn files(dir: &str, filter: &dyn Fn(&str) -> bool, budget: usize, out: &mut Vec<u8>) {
    let mut paths = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(dir)];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() && filter(&p.to_string_lossy()) {
                paths.push(p);
            }
        }
    }
    paths.sort();
    let start = out.len();
    for p in paths {
        if out.len() - start >= budget {
            break;
        }
        if let Ok(mut d) = std::fs::read(&p) {
            d.truncate(budget - (out.len() - start));
            out.extend_from_slice(&d);
        }
    }
}

/// About `WIM_CODEC_BENCH_MIB` MiB (default 32) of real files: see [`load_input_mib`].
#[allow(dead_code)]
pub fn load_input() -> Vec<u8> {
    load_input_mib("WIM_CODEC_BENCH_MIB", 32)
}

/// About `$var` MiB (default `default`) of real files: half `/usr/share/doc`, half `.so`
/// files, each part in sorted path order; or, with `WIM_BENCH_INPUT_DIR=<dir>`, the files
/// under that directory, in sorted path order.
pub fn load_input_mib(var: &str, default: usize) -> Vec<u8> {
    let mib: usize = std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    let half = mib << 19;
    let mut v = Vec::new();
    if let Ok(dir) = std::env::var("WIM_BENCH_INPUT_DIR") {
        files(&dir, &|_| true, 2 * half, &mut v);
        return v;
    }
    files("/usr/share/doc", &|_| true, half, &mut v);
    files(
        "/usr/lib/x86_64-linux-gnu",
        &|p| p.ends_with(".so") || p.contains(".so."),
        2 * half - v.len(),
        &mut v,
    );
    v
}
