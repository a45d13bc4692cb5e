//! Version files and configuration packages built in code for the tests
//! (`crate::common::packages`).

use std::io::Write;

use md5::{Digest, Md5};
use zip::write::SimpleFileOptions;

/// The template files of the standard package used throughout.
pub fn template() -> Vec<(String, Vec<u8>)> {
    vec![
        (
            "product/dataphin/values.yaml".into(),
            b"metadata:\n  database:\n    host: localhost\n    port: 5432\n  pool: 10\nfeatures:\n  lineage: true\nextra: ~\n".to_vec(),
        ),
        (
            "product/dataphin/templates/deploy.yaml".into(),
            b"kind: Deployment\nreplicas: 2\n".to_vec(),
        ),
    ]
}

/// The template MD5 as documented: md5 over sorted `MD5  PATH` lines.
pub fn template_md5(files: &[(String, Vec<u8>)]) -> String {
    let mut lines: Vec<(String, String)> = files
        .iter()
        .filter_map(|(name, body)| {
            let rel = name.strip_prefix("product/dataphin/")?;
            Some((rel.to_owned(), format!("{:x}", Md5::digest(body))))
        })
        .collect();
    lines.sort();
    let mut all = Md5::new();
    for (path, md5) in lines {
        all.update(format!("{md5}  {path}\n").as_bytes());
    }
    format!("{:x}", all.finalize())
}

/// A version configuration for `version`, requiring two items.
pub fn version_file(version: &str, md5: &str) -> String {
    format!(
        "\
version: {version}
description: test version
services:
  - name: mgmt
    image: registry.example.com/dataphin/mgmt:{version}
  - name: oltp
    version: {version}
config_items:
  - key: metadata.database.host
    type: string
    description: the metadata database host
  - key: metadata.database.port
    type: number
template_md5: {md5}
zero_downtime:
  compatible_from: [V5.2.0.00]
data_update_tasks:
  - name: asset-refresh
    blocking: true
    skippable: true
  - name: metadata-acquisition
    blocking: true
    skippable: false
"
    )
}

/// A ZIP of `entries`, deflated.
pub fn zip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut out);
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, body) in entries {
        w.start_file(name.as_str(), options).unwrap();
        w.write_all(body).unwrap();
    }
    w.finish().unwrap();
    out.into_inner()
}

/// A non-standard package: the template, the site's values and overlay.
pub fn non_standard(values: &str, overlay: Option<&str>) -> Vec<u8> {
    let mut entries = template();
    entries.push(("values.yaml".into(), values.as_bytes().to_vec()));
    if let Some(o) = overlay {
        entries.push(("overlay.yaml".into(), o.as_bytes().to_vec()));
    }
    zip(&entries)
}

/// Replaces every occurrence of `from` with `to` (same length) in `bytes`:
/// crafts what a ZIP writer refuses to write.
pub fn patch(mut bytes: Vec<u8>, from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut i = 0;
    while let Some(at) = bytes[i..].windows(from.len()).position(|w| w == from) {
        bytes[i + at..i + at + to.len()].copy_from_slice(to);
        i += at + to.len();
    }
    bytes
}
