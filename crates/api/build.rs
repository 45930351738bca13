//! Embeds the dashboard: every file of `assets/` is gzipped once here (so the binary carries no
//! compressor), and one version string, a hash of all of them, names the asset URLs
//! (`/assets/VERSION/…`) so they can be cached for good. `index.html` gets the version written
//! into its `{{version}}` placeholders.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Every file served under `/assets/VERSION/`, with its content type. `index.html` (the agent's
/// page) and `hub.html` (the hub's) are served at `/` and are not in this list.
const FILES: &[(&str, &str)] = &[
    ("app.js", "text/javascript; charset=utf-8"),
    ("api.js", "text/javascript; charset=utf-8"),
    ("chart.js", "text/javascript; charset=utf-8"),
    ("fmt.js", "text/javascript; charset=utf-8"),
    ("now.js", "text/javascript; charset=utf-8"),
    ("history.js", "text/javascript; charset=utf-8"),
    ("models.js", "text/javascript; charset=utf-8"),
    ("requests.js", "text/javascript; charset=utf-8"),
    ("observations.js", "text/javascript; charset=utf-8"),
    ("bench.js", "text/javascript; charset=utf-8"),
    ("fleet.js", "text/javascript; charset=utf-8"),
    ("style.css", "text/css; charset=utf-8"),
    ("uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    ("uPlot.min.css", "text/css; charset=utf-8"),
    ("uPlot.LICENSE", "text/plain; charset=utf-8"),
];

/// FNV-1a, 64 bits: enough to tell one build's assets from another's.
fn fnv1a(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= u64::from(*b);
        *h = h.wrapping_mul(0x0100_0000_01b3);
    }
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data)?;
    enc.finish()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn write(path: &Path, data: &[u8]) {
    std::fs::write(path, data).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("assets");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed=assets");

    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    let mut files = Vec::new();
    for (name, mime) in FILES {
        let data = read(&dir.join(name));
        fnv1a(&mut hash, name.as_bytes());
        fnv1a(&mut hash, &data);
        files.push((*name, *mime, data));
    }
    let index = String::from_utf8(read(&dir.join("index.html")))?;
    fnv1a(&mut hash, index.as_bytes());
    let hub = String::from_utf8(read(&dir.join("hub.html")))?;
    fnv1a(&mut hash, hub.as_bytes());
    let version = format!("{hash:016x}");
    let index = index.replace("{{version}}", &version);
    let hub = hub.replace("{{version}}", &version);

    let mut code = String::new();
    let _ = writeln!(
        code,
        "/// Hash of every asset: the path segment that versions them."
    );
    let _ = writeln!(code, "pub const VERSION: &str = \"{version}\";");
    write(&out.join("index.html"), index.as_bytes());
    write(&out.join("index.html.gz"), &gzip(index.as_bytes())?);
    let _ = writeln!(
        code,
        "/// `index.html`, plain and gzipped.\npub static INDEX: Asset = Asset {{ name: \"index.html\", \
         mime: \"text/html; charset=utf-8\", raw: include_bytes!(concat!(env!(\"OUT_DIR\"), \
         \"/index.html\")), gz: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/index.html.gz\")) }};"
    );
    write(&out.join("hub.html"), hub.as_bytes());
    write(&out.join("hub.html.gz"), &gzip(hub.as_bytes())?);
    let _ = writeln!(
        code,
        "/// `hub.html` (the hub's page), plain and gzipped.\npub static HUB_PAGE: Asset = Asset {{ name: \"hub.html\", \
         mime: \"text/html; charset=utf-8\", raw: include_bytes!(concat!(env!(\"OUT_DIR\"), \
         \"/hub.html\")), gz: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/hub.html.gz\")) }};"
    );
    let _ = writeln!(
        code,
        "/// Every other asset.\npub static ASSETS: &[Asset] = &["
    );
    for (name, mime, data) in &files {
        let gz_name = format!("{name}.gz");
        write(&out.join(&gz_name), &gzip(data)?);
        let src = dir.join(name);
        let _ = writeln!(
            code,
            "    Asset {{ name: {name:?}, mime: {mime:?}, raw: include_bytes!({src:?}), gz: \
             include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{gz_name}\")) }},",
            src = src.display().to_string()
        );
    }
    let _ = writeln!(code, "];");
    write(&out.join("assets.rs"), code.as_bytes());
    Ok(())
}
