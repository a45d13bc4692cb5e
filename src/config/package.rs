//! What a site's configuration package contains.
//!
//! - A **standard** package is one YAML file, or a ZIP of YAML files (any
//!   `.yaml`/`.yml` entry outside `product/`), holding the configuration items.
//! - A **non-standard** package is a ZIP with the standard configuration
//!   template under `product/dataphin/` (its `values.yaml` declares the keys
//!   and their types), the site's `values.yaml` at the root and optionally an
//!   overlay file, `overlay.yaml`.
//!
//! The template's MD5 is the MD5 of the lines `MD5  PATH\n`, one per file
//! under `product/dataphin/` (PATH relative to that folder), sorted by PATH:
//! what `md5sum` prints for the folder, sorted, hashed once more.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use md5::{Digest, Md5};

use crate::config::archive::{PackageError, SafeZip, looks_like_zip};
use crate::config::limits::Limits;
use crate::diag::SourceFile;

/// The folder of the standard configuration template inside a package.
pub const TEMPLATE_DIR: &str = "product/dataphin/";
/// The template's file declaring keys and types.
pub const TEMPLATE_VALUES: &str = "product/dataphin/values.yaml";
/// The site's values in a non-standard package.
pub const VALUES: &str = "values.yaml";
/// The site's overlay in a non-standard package.
pub const OVERLAY: &str = "overlay.yaml";

/// A package as read.
#[derive(Debug)]
pub enum Package {
    /// YAML files holding the configuration items.
    Standard {
        /// Each YAML document, named `PACKAGE` or `PACKAGE!ENTRY`.
        files: Vec<Arc<SourceFile>>,
        /// Entries in the archive (1 for a plain YAML file).
        entries: usize,
    },
    /// Template, overlay and values.
    NonStandard(NonStandard),
}

/// The parts of a non-standard package.
#[derive(Debug)]
pub struct NonStandard {
    /// MD5 of the template (see the module docs).
    pub template_md5: String,
    /// Files under the template folder.
    pub template_files: usize,
    /// `product/dataphin/values.yaml`.
    pub template_values: Option<Arc<SourceFile>>,
    /// `values.yaml`.
    pub values: Option<Arc<SourceFile>>,
    /// `overlay.yaml`.
    pub overlay: Option<Arc<SourceFile>>,
    /// Entries in the archive.
    pub entries: usize,
}

/// Reads the package at `path`: YAML or ZIP, decided by its first bytes.
pub fn read(path: &Path, limits: &Limits) -> Result<Package, PackageError> {
    let io = |source| PackageError::Io {
        path: path.to_owned(),
        source,
    };
    let mut head = [0u8; 4];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(io)?;
    if looks_like_zip(&head[..n]) {
        return read_zip(path, limits);
    }
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > limits.yaml.max_bytes as u64 {
        return Err(refused(
            path,
            None,
            format!(
                "it is {len} bytes, more than the YAML limit of {}",
                limits.yaml.max_bytes
            ),
            "raise the limit with --max-yaml-size if the package is genuine",
        ));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        refused(
            path,
            None,
            "it is neither a ZIP archive nor UTF-8 YAML".into(),
            "upload the YAML or ZIP package",
        )
    })?;
    Ok(Package::Standard {
        files: vec![SourceFile::new(path.display().to_string(), text)],
        entries: 1,
    })
}

fn refused(path: &Path, entry: Option<String>, why: String, hint: &str) -> PackageError {
    PackageError::Refused {
        path: path.to_owned(),
        entry,
        why,
        hint: hint.to_owned(),
    }
}

fn is_yaml(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

fn read_zip(path: &Path, limits: &Limits) -> Result<Package, PackageError> {
    let mut zip = SafeZip::open(path, limits)?;
    let entries = zip.entries.len();
    let non_standard = zip.entries.iter().any(|e| e.name.starts_with(TEMPLATE_DIR));
    let mut template: Vec<(String, String)> = Vec::new();
    let mut yaml: Vec<(String, Arc<SourceFile>)> = Vec::new();
    for i in 0..entries {
        let entry = zip.entries[i].clone();
        if entry.is_dir {
            continue;
        }
        let label = format!("{}!{}", path.display(), entry.name);
        let wanted_text = if non_standard {
            [TEMPLATE_VALUES, VALUES, OVERLAY].contains(&entry.name.as_str())
        } else {
            is_yaml(&entry.name) && !entry.name.starts_with("product/")
        };
        if let Some(relative) = entry
            .name
            .strip_prefix(TEMPLATE_DIR)
            .filter(|_| non_standard)
        {
            let mut md5 = Md5Writer(
                Md5::new(),
                wanted_text.then(Vec::new),
                limits.yaml.max_bytes,
            );
            zip.stream(i, &mut md5)?;
            template.push((relative.to_owned(), format!("{:x}", md5.0.finalize_reset())));
            if let Some(text) = md5.1 {
                yaml.push((
                    entry.name.clone(),
                    text_file(path, &entry.name, label, text)?,
                ));
            }
        } else if wanted_text {
            let mut buf = Capped(Vec::new(), limits.yaml.max_bytes);
            zip.stream(i, &mut buf)?;
            yaml.push((
                entry.name.clone(),
                text_file(path, &entry.name, label, buf.0)?,
            ));
        } else {
            // Read and thrown away, so that its sizes and checksum are checked too.
            zip.stream(i, &mut std::io::sink())?;
        }
    }
    if !non_standard {
        return Ok(Package::Standard {
            files: yaml.into_iter().map(|(_, f)| f).collect(),
            entries,
        });
    }
    let mut take = |name: &str| {
        yaml.iter()
            .position(|(n, _)| n == name)
            .map(|i| yaml.swap_remove(i).1)
    };
    Ok(Package::NonStandard(NonStandard {
        template_md5: template_md5(&mut template),
        template_files: template.len(),
        template_values: take(TEMPLATE_VALUES),
        values: take(VALUES),
        overlay: take(OVERLAY),
        entries,
    }))
}

fn text_file(
    path: &Path,
    entry: &str,
    label: String,
    bytes: Vec<u8>,
) -> Result<Arc<SourceFile>, PackageError> {
    let text = String::from_utf8(bytes).map_err(|_| {
        refused(
            path,
            Some(entry.to_owned()),
            "it is not UTF-8 text".into(),
            "save the YAML file as UTF-8",
        )
    })?;
    Ok(SourceFile::new(label, text))
}

/// The template MD5 over `(path, md5)` pairs (see the module docs).
pub fn template_md5(files: &mut [(String, String)]) -> String {
    files.sort();
    let mut all = Md5::new();
    for (path, md5) in files.iter() {
        all.update(format!("{md5}  {path}\n").as_bytes());
    }
    format!("{:x}", all.finalize())
}

/// Hashes what is written; keeps a copy (up to a cap) when asked to.
struct Md5Writer(Md5, Option<Vec<u8>>, usize);

impl Write for Md5Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        if let Some(copy) = &mut self.1 {
            push_capped(copy, buf, self.2)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A buffer that refuses to grow past its cap (the YAML size limit).
struct Capped(Vec<u8>, usize);

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        push_capped(&mut self.0, buf, self.1)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn push_capped(into: &mut Vec<u8>, buf: &[u8], cap: usize) -> std::io::Result<()> {
    if into.len() + buf.len() > cap {
        return Err(std::io::Error::other(format!(
            "a YAML file over the limit of {cap} bytes (raise it with --max-yaml-size)"
        )));
    }
    into.extend_from_slice(buf);
    Ok(())
}

/// The site's files of a package (not the standard template, which the
/// platform ships): `values.yaml` and `overlay.yaml` of a non-standard
/// package, every YAML document of a standard one, as `(path, text)`.
pub fn site_files(package: &Package) -> Vec<(String, String)> {
    let name = |f: &SourceFile| match f.name.split_once('!') {
        Some((_, entry)) => entry.to_owned(),
        None => Path::new(&f.name)
            .file_name()
            .map_or_else(|| f.name.clone(), |n| n.to_string_lossy().into_owned()),
    };
    match package {
        Package::Standard { files, .. } => {
            files.iter().map(|f| (name(f), f.text.clone())).collect()
        }
        Package::NonStandard(ns) => [(VALUES, &ns.values), (OVERLAY, &ns.overlay)]
            .into_iter()
            .filter_map(|(path, f)| f.as_ref().map(|f| (path.to_owned(), f.text.clone())))
            .collect(),
    }
}
