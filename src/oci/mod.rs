//! Versions as OCI artifacts, following the CNCF ModelPack specification: an image
//! manifest of artifact type `application/vnd.cncf.model.manifest.v1+json`, a model
//! config (`application/vnd.cncf.model.config.v1+json`) filled from the records, and
//! one uncompressed layer per file, its path in an annotation. Everything here is made
//! from the records and the files' SHA-256 digests alone, in a fixed order, so the same
//! version gives the same bytes, and the same digests, on every export.
//!
//! [`layout`] writes an artifact as an OCI image layout folder; `distribution` (with
//! the `s3` feature, which brings the HTTP client) sends it to a registry.

#[cfg(feature = "s3")]
pub mod distribution;
pub mod layout;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::id::{ObjectId, hex};
use crate::ops::digested::DigestedFile;

/// The media type of an image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The media type of an image index.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The artifact type of a ModelPack model.
pub const ARTIFACT_TYPE: &str = "application/vnd.cncf.model.manifest.v1+json";
/// The media type of a ModelPack model config.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.model.config.v1+json";
/// The layer annotation holding a file's path.
pub const FILEPATH: &str = "org.cncf.model.filepath";
/// The layer annotation holding a file's metadata, as JSON.
pub const FILE_METADATA: &str = "org.cncf.model.file.metadata+json";
/// The layer annotation saying its media type was guessed.
pub const UNTESTED: &str = "org.cncf.model.file.mediatype.untested";
/// The index annotation naming a manifest by its tag.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

const WEIGHT: &str = "application/vnd.cncf.model.weight.v1.raw";
const WEIGHT_CONFIG: &str = "application/vnd.cncf.model.weight.config.v1.raw";
const DOC: &str = "application/vnd.cncf.model.doc.v1.raw";
const CODE: &str = "application/vnd.cncf.model.code.v1.raw";

/// Extensions of weight files, with the `format` a model config gives them (none for
/// `.bin`, which any framework writes).
const WEIGHTS: &[(&str, &str)] = &[
    ("safetensors", "safetensors"),
    ("gguf", "gguf"),
    ("ggml", "ggml"),
    ("onnx", "onnx"),
    ("pt", "pt"),
    ("pth", "pt"),
    ("bin", ""),
    ("ckpt", "ckpt"),
    ("h5", "h5"),
    ("keras", "keras"),
    ("pb", "tensorflow"),
    ("tflite", "tflite"),
    ("msgpack", "flax"),
    ("npz", "npz"),
    ("npy", "npy"),
    ("pkl", "pickle"),
    ("joblib", "joblib"),
    ("mlmodel", "coreml"),
    ("plan", "tensorrt"),
    ("engine", "tensorrt"),
    ("params", "mxnet"),
];

/// Extensions of configuration files of the weights (tokenizers, model configs).
const CONFIGS: &[&str] = &[
    "json", "yaml", "yml", "toml", "txt", "pbtxt", "model", "tiktoken", "vocab", "merges", "spm",
    "cfg", "ini", "xml",
];

/// Extensions of code.
const CODE_EXTENSIONS: &[&str] = &[
    "py", "sh", "ipynb", "js", "ts", "rs", "go", "java", "c", "cc", "cpp", "h", "r", "jl",
];

/// Extensions of documents.
const DOCS: &[&str] = &["md", "markdown", "rst", "adoc", "pdf", "html"];

/// Names (before any extension) of documents.
const DOC_NAMES: &[&str] = &[
    "readme",
    "license",
    "licence",
    "notice",
    "copying",
    "changelog",
    "model_card",
    "modelcard",
    "citation",
];

/// Returns the ModelPack media type of a file, and whether it was guessed (a file of
/// no kind the lists above know is taken for a configuration file).
pub fn media_type(path: &str, exec: bool) -> (&'static str, bool) {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name.as_str(), ""));
    if DOC_NAMES.contains(&stem) || DOC_NAMES.contains(&name.as_str()) || DOCS.contains(&ext) {
        (DOC, false)
    } else if WEIGHTS.iter().any(|(e, _)| *e == ext) {
        (WEIGHT, false)
    } else if CODE_EXTENSIONS.contains(&ext) || exec {
        (CODE, false)
    } else if CONFIGS.contains(&ext) {
        (WEIGHT_CONFIG, false)
    } else {
        (WEIGHT_CONFIG, true)
    }
}

/// Returns the `format` of the model config: the format of its weight files when they
/// share one, else none.
fn format_of(files: &[DigestedFile]) -> Option<&'static str> {
    let mut formats = files.iter().filter_map(|f| {
        let ext = f.path.rsplit_once('.')?.1.to_ascii_lowercase();
        WEIGHTS
            .iter()
            .find(|(e, _)| *e == ext)
            .map(|(_, format)| *format)
    });
    // `.bin` holds anything (PyTorch, raw arrays): it names no format.
    let first = formats.next().filter(|f| !f.is_empty())?;
    formats.all(|f| f == first).then_some(first)
}

/// What the records say of a version, for its artifact.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The model's name.
    pub model: String,
    /// The version number.
    pub version: u64,
    /// The version's tree, in hex.
    pub tree: String,
    /// When it was pushed, RFC 3339.
    pub created: String,
    /// The git commit of the run it came from.
    pub revision: Option<String>,
    /// The git repository of that run, when it is a URL.
    pub source: Option<String>,
    /// The model's description (`mreg model set`).
    pub description: Option<String>,
    /// Its license (an SPDX expression).
    pub license: Option<String>,
    /// The version's metrics.
    pub metrics: BTreeMap<String, f64>,
}

/// One layer: a file of the version.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The file's path in the version.
    pub path: String,
    /// Its object in the registry.
    pub id: ObjectId,
    /// Its bytes.
    pub size: u64,
    /// `sha256:HEX` of its content.
    pub digest: String,
}

/// An artifact ready to be written or sent: its layers (files of the registry), its
/// config and its manifest (bytes made here).
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The layers, in the manifest's order.
    pub layers: Vec<Layer>,
    /// The model config's bytes.
    pub config: Vec<u8>,
    /// The manifest's bytes.
    pub manifest: Vec<u8>,
}

/// Returns `sha256:HEX` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex(&sha2::Sha256::digest(bytes)))
}

impl Artifact {
    /// Builds the artifact of a version from its facts and its files (sorted by path,
    /// as [`crate::ops::digested::version_files`] gives them).
    pub fn build(facts: &Facts, files: &[DigestedFile]) -> Artifact {
        let layers: Vec<Layer> = files
            .iter()
            .map(|f| Layer {
                path: f.path.clone(),
                id: f.id,
                size: f.size,
                digest: format!("sha256:{}", hex(&f.sha256)),
            })
            .collect();
        let config = config(facts, files, &layers);
        let manifest = manifest(facts, files, &layers, &config);
        Artifact {
            layers,
            config,
            manifest,
        }
    }

    /// Returns `sha256:HEX` of the manifest.
    pub fn manifest_digest(&self) -> String {
        digest_of(&self.manifest)
    }

    /// Returns the bytes of the layers, each distinct blob once.
    pub fn blob_bytes(&self) -> u64 {
        let mut seen = std::collections::HashSet::new();
        self.layers
            .iter()
            .filter(|l| seen.insert(&l.digest))
            .map(|l| l.size)
            .sum()
    }
}

/// Returns the model config's bytes.
fn config(facts: &Facts, files: &[DigestedFile], layers: &[Layer]) -> Vec<u8> {
    let mut descriptor = Map::new();
    descriptor.insert("createdAt".into(), json!(facts.created));
    descriptor.insert("name".into(), json!(facts.model));
    descriptor.insert("version".into(), json!(facts.version.to_string()));
    if let Some(revision) = &facts.revision {
        descriptor.insert("revision".into(), json!(revision));
    }
    if let Some(source) = &facts.source {
        descriptor.insert("sourceURL".into(), json!(source));
    }
    if let Some(description) = &facts.description {
        descriptor.insert("description".into(), json!(description));
    }
    if let Some(license) = &facts.license {
        descriptor.insert("licenses".into(), json!([license]));
    }
    let mut model = Map::new();
    if let Some(format) = format_of(files) {
        model.insert("format".into(), json!(format));
    }
    let config = json!({
        "descriptor": descriptor,
        "config": model,
        "modelfs": {
            "type": "layers",
            "diffIds": layers.iter().map(|l| l.digest.as_str()).collect::<Vec<_>>(),
        },
    });
    serde_json::to_vec(&config).expect("a config serializes")
}

/// Returns the manifest's bytes.
fn manifest(facts: &Facts, files: &[DigestedFile], layers: &[Layer], config: &[u8]) -> Vec<u8> {
    let layers: Vec<Value> = layers
        .iter()
        .zip(files)
        .map(|(layer, file)| {
            let (media_type, untested) = media_type(&file.path, file.exec);
            let metadata = json!({
                "name": file.path,
                "mode": if file.exec { 0o755 } else { 0o644 },
                "uid": 0,
                "gid": 0,
                "size": file.size,
                "mtime": facts.created,
                "typeflag": 48,
            });
            let mut annotations = Map::new();
            annotations.insert(FILEPATH.into(), json!(file.path));
            annotations.insert(FILE_METADATA.into(), json!(metadata.to_string()));
            annotations.insert(UNTESTED.into(), json!(untested.to_string()));
            json!({
                "mediaType": media_type,
                "digest": layer.digest,
                "size": layer.size,
                "annotations": annotations,
            })
        })
        .collect();
    let mut annotations = Map::new();
    let mut put = |key: &str, value: &str| {
        annotations.insert(key.into(), json!(value));
    };
    put("org.opencontainers.image.created", &facts.created);
    put("org.opencontainers.image.title", &facts.model);
    put(
        "org.opencontainers.image.version",
        &facts.version.to_string(),
    );
    if let Some(revision) = &facts.revision {
        put("org.opencontainers.image.revision", revision);
    }
    if let Some(source) = &facts.source {
        put("org.opencontainers.image.source", source);
    }
    if let Some(description) = &facts.description {
        put("org.opencontainers.image.description", description);
    }
    if let Some(license) = &facts.license {
        put("org.opencontainers.image.licenses", license);
    }
    put(
        "dev.mreg.ref",
        &format!("{}@{}", facts.model, facts.version),
    );
    put("dev.mreg.tree", &facts.tree);
    let metrics: Map<String, Value> = facts
        .metrics
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    if !metrics.is_empty() {
        put("dev.mreg.metrics", &Value::Object(metrics).to_string());
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": {
            "mediaType": CONFIG_MEDIA_TYPE,
            "digest": digest_of(config),
            "size": config.len(),
        },
        "layers": layers,
        "annotations": annotations,
    });
    serde_json::to_vec(&manifest).expect("a manifest serializes")
}

/// Returns whether `tag` is a tag an OCI registry takes.
pub fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, exec: bool) -> DigestedFile {
        DigestedFile {
            path: path.to_owned(),
            id: ObjectId::of(path.as_bytes()),
            sha256: [7; 32],
            size: 10,
            exec,
        }
    }

    #[test]
    fn files_get_the_media_type_of_their_kind() {
        assert_eq!(media_type("model.safetensors", false), (WEIGHT, false));
        assert_eq!(media_type("sub/pytorch_model.bin", false), (WEIGHT, false));
        assert_eq!(media_type("config.json", false), (WEIGHT_CONFIG, false));
        assert_eq!(media_type("tokenizer.model", false), (WEIGHT_CONFIG, false));
        assert_eq!(media_type("README.md", false), (DOC, false));
        assert_eq!(media_type("LICENSE", false), (DOC, false));
        assert_eq!(media_type("serve.py", false), (CODE, false));
        assert_eq!(media_type("run", true), (CODE, false));
        assert_eq!(media_type("weird.xyz", false), (WEIGHT_CONFIG, true));
    }

    #[test]
    fn the_same_version_gives_the_same_bytes_and_a_valid_config() {
        let facts = Facts {
            model: "churn".into(),
            version: 4,
            tree: "ab".repeat(32),
            created: "2026-12-07T10:00:00Z".into(),
            revision: Some("0123abc".into()),
            metrics: [("acc".to_owned(), 0.9), ("bad".to_owned(), f64::NAN)]
                .into_iter()
                .collect(),
            ..Facts::default()
        };
        let files = [file("config.json", false), file("model.safetensors", false)];
        let a = Artifact::build(&facts, &files);
        let b = Artifact::build(&facts, &files);
        assert_eq!(a.manifest, b.manifest);
        let config: Value = serde_json::from_slice(&a.config).unwrap();
        assert_eq!(config["descriptor"]["version"], "4");
        assert_eq!(config["config"]["format"], "safetensors");
        assert_eq!(config["modelfs"]["diffIds"].as_array().unwrap().len(), 2);
        let manifest: Value = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(manifest["artifactType"], ARTIFACT_TYPE);
        assert_eq!(manifest["config"]["digest"], digest_of(&a.config));
        assert_eq!(
            manifest["layers"][1]["annotations"][FILEPATH],
            "model.safetensors"
        );
        assert_eq!(manifest["annotations"]["dev.mreg.metrics"], "{\"acc\":0.9}");
        assert_eq!(
            a.blob_bytes(),
            10,
            "one blob for two files of the same content"
        );
    }

    #[test]
    fn tags_are_checked() {
        assert!(valid_tag("4") && valid_tag("v1.2_rc-3") && valid_tag("_x"));
        assert!(!valid_tag("") && !valid_tag("-x") && !valid_tag("a/b") && !valid_tag("a:b"));
        assert!(!valid_tag(&"a".repeat(129)));
    }
}
