use super::*;

const STOCK: &[u8] = include_bytes!("../../tests/fixtures/oms/model_signing-1.1.1.sig");
const PUBLIC: &str = include_str!("../../tests/fixtures/oms/test-key.pub");
const PRIVATE: &str = include_str!("../../tests/fixtures/oms/test-key.pem");

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[test]
fn a_bundle_of_the_stock_signer_is_read_and_verified() {
    let bundle = Bundle::parse(STOCK).unwrap();
    let key = PublicKey::from_pem(PUBLIC).unwrap();
    assert_eq!(bundle.hint.as_deref(), Some(key.hint().as_str()));
    assert!(bundle.signed_by(&key));
    let manifest = bundle.manifest().unwrap();
    let names: Vec<&str> = manifest.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "README.md",
            "config.json",
            "empty.txt",
            "sub/tokenizer.json",
            "sub/vocab.txt",
            "sub.txt",
            "weights.bin"
        ]
    );
    let config = manifest
        .resources
        .iter()
        .find(|r| r.name == "config.json")
        .unwrap();
    assert_eq!(
        config.digest,
        sha256(include_bytes!("../../tests/fixtures/oms/model/config.json"))
    );
    assert!(manifest.ignores(".git/config"));
    assert!(!manifest.ignores(".gitx"));
}

#[test]
fn what_mreg_signs_reads_back_the_same() {
    let key = PrivateKey::from_pem(PRIVATE).unwrap();
    let files = vec![
        ("sub.txt".to_owned(), sha256(b"a")),
        ("sub/x".to_owned(), sha256(b"b")),
        ("empty".to_owned(), sha256(b"")),
    ];
    let bytes = bundle(&key, &statement("churn", &files, false));
    let read = Bundle::parse(&bytes).unwrap();
    assert!(read.signed_by(&key.public()));
    let manifest = read.manifest().unwrap();
    assert_eq!(manifest.subject, "churn");
    assert_eq!(manifest.ignore_paths, [SIGNATURE_FILE]);
    let names: Vec<&str> = manifest.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["empty", "sub/x", "sub.txt"]);
    // Signing is deterministic (RFC 6979): the same version signs to the same bytes.
    assert_eq!(bytes, bundle(&key, &statement("churn", &files, false)));
}

#[test]
fn a_changed_payload_fails_the_signature_and_a_changed_digest_the_subject() {
    let key = PublicKey::from_pem(PUBLIC).unwrap();
    let mut bundle = Bundle::parse(STOCK).unwrap();
    let text = String::from_utf8(bundle.payload.clone()).unwrap();
    let first = text.find("\"digest\": \"df26").unwrap() + 11;
    let mut changed = text.clone();
    changed.replace_range(first..=first, "e");
    bundle.payload = changed.into_bytes();
    assert!(!bundle.signed_by(&key));
    let err = bundle.manifest().unwrap_err();
    assert!(err.to_string().contains("subject digest"), "{err}");
}

#[test]
fn hostile_bundles_are_refused_with_a_reason() {
    let stock: Value = serde_json::from_slice(STOCK).unwrap();
    let refused = |edit: &dyn Fn(&mut Value)| {
        let mut value = stock.clone();
        edit(&mut value);
        Bundle::parse(&serde_json::to_vec(&value).unwrap())
            .err()
            .map(|e| e.to_string())
    };
    assert!(refused(&|v| v["mediaType"] = json!("application/json")).is_some());
    assert!(refused(&|v| v["extra"] = json!(1)).is_some());
    assert!(refused(&|v| v["dsseEnvelope"]["signatures"] = json!([])).is_some());
    assert!(refused(&|v| v["dsseEnvelope"]["payloadType"] = json!("text/plain")).is_some());
    assert!(refused(&|v| v["dsseEnvelope"]["payload"] = json!("!!")).is_some());
    assert!(Bundle::parse(b"[1, 2").is_err());
    assert!(Bundle::parse(&vec![b' '; (BUNDLE_LIMIT + 1) as usize]).is_err());
}

#[test]
fn listed_names_must_stay_inside_the_model() {
    assert_eq!(normal_name("./a/b").unwrap(), "a/b");
    for bad in ["../x", "/etc/passwd", "a//b", "a/../b", ""] {
        assert!(normal_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn paths_sort_by_components_as_the_stock_signer_sorts_them() {
    let mut names = vec!["sub.txt", "sub/x", "a", "d/e.txt", "d/e/f"];
    names.sort_by(|a, b| path_order(a, b));
    assert_eq!(names, ["a", "d/e/f", "d/e.txt", "sub/x", "sub.txt"]);
}

#[test]
fn a_bundle_relabelled_with_another_keys_hint_is_not_that_keys_nor_its_signers() {
    let key = PublicKey::from_pem(PUBLIC).unwrap();
    let mut bundle = Bundle::parse(STOCK).unwrap();
    bundle.hint = Some("9".repeat(64));
    assert!(
        !bundle.signed_by(&key),
        "the stock verifier refuses a key mismatch"
    );
    bundle.hint = None;
    assert!(
        bundle.signed_by(&key),
        "no hint is only a warning for the stock verifier"
    );
}

#[test]
fn only_the_first_signature_of_an_envelope_counts() {
    let key = PublicKey::from_pem(PUBLIC).unwrap();
    let mut bundle = Bundle::parse(STOCK).unwrap();
    bundle
        .signatures
        .insert(0, vec![0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]);
    assert!(!bundle.signed_by(&key));
}

#[test]
fn a_manifest_must_be_consistent_with_itself() {
    let key = PrivateKey::from_pem(PRIVATE).unwrap();
    let statement =
        String::from_utf8(statement("m", &[("a".to_owned(), sha256(b"a"))], false)).unwrap();
    let refused = |text: String| {
        let bytes = bundle(&key, text.as_bytes());
        Bundle::parse(&bytes)
            .unwrap()
            .manifest()
            .err()
            .map(|e| e.to_string())
    };
    // A file listed with another algorithm than the signature's hash type.
    let mixed = statement.replace("\"algorithm\": \"sha256\"", "\"algorithm\": \"blake3\"");
    assert!(
        refused(mixed)
            .unwrap()
            .contains("not the signature's hash type")
    );
    // A file both listed and ignored.
    let both = statement.replace("\"model.sig\"", "\"a\"");
    assert!(refused(both).unwrap().contains("which it also ignores"));
}
