//! RFC-0018 signed events: valid, invalid, wrong key, unsigned when required; `did:key`; signed
//! checkpoints.
#![cfg(feature = "signatures")]

use oidb::checkpoint::{CheckpointProblem, CheckpointScope};
use oidb::signature::{
    did_key, parse_did_key, parse_public_key, public_key_text, signed_content,
    verify_event_signature, SigningKey, PROOF_TYPE,
};
use oidb::{Error, EventType, NewEvent, Store};
use serde_json::json;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn comment(actor: &str) -> NewEvent {
    NewEvent::new("intent-1", EventType::Comment, actor).payload(json!({"message": "signed"}))
}

#[test]
fn a_validly_signed_event_is_stored_with_its_proof_in_the_hash() {
    let store = Store::in_memory().unwrap();
    let alice = key(1);
    let identity = store
        .register_agent_key("alice", &alice.verifying_key())
        .unwrap();
    assert_eq!(identity.did, did_key(&alice.verifying_key()));
    assert_eq!(identity.key_algorithm, "Ed25519");

    let event = store
        .append(
            comment("alice")
                .trace_id("6cad4a268d116ece1738f7d93d9c1724")
                .sign(&alice),
        )
        .unwrap();
    let proof = event.proof.clone().unwrap();
    assert_eq!(proof["type"], PROOF_TYPE);
    assert_eq!(proof["verification_method"], identity.did);
    assert_eq!(
        verify_event_signature(&event).unwrap(),
        Some(identity.did.clone())
    );
    assert!(store.verify_chain("intent-1").unwrap().valid);

    // The signature covers the event without proof and without what the store assigned.
    let signed = String::from_utf8(signed_content(&event).unwrap()).unwrap();
    assert!(
        signed.starts_with(r#"{"actor":"alice","created_at":"#),
        "{signed}"
    );
    for absent in [
        "proof",
        "sequence",
        "event_hash",
        "position",
        "previous_event_hash",
    ] {
        assert!(!signed.contains(absent), "{absent} in {signed}");
    }
    assert!(signed.contains("trace_id"));

    // An actor without a registered key may sign too: the did:key speaks for itself.
    let stranger = key(9);
    let event = store.append(comment("bob").sign(&stranger)).unwrap();
    assert_eq!(
        verify_event_signature(&event).unwrap(),
        Some(did_key(&stranger.verifying_key()))
    );
}

#[test]
fn an_event_changed_after_signing_is_refused() {
    let store = Store::in_memory().unwrap();
    let alice = key(1);
    store
        .register_agent_key("alice", &alice.verifying_key())
        .unwrap();
    let tampered = comment("alice")
        .sign(&alice)
        .payload(json!({"message": "not what was signed"}));
    match store.append(tampered) {
        Err(Error::InvalidSignature { reason, .. }) => {
            assert!(reason.contains("does not verify"), "{reason}")
        }
        other => panic!("{other:?}"),
    }

    let mut proof = comment("alice").sign(&alice);
    let mut value = serde_json::to_value(store.append(proof.clone()).unwrap()).unwrap();
    value["proof"]["signature"] = "not base64!".into();
    let broken: oidb::Event = serde_json::from_value(value).unwrap();
    assert!(matches!(
        verify_event_signature(&broken),
        Err(Error::InvalidSignature { .. })
    ));

    proof = comment("alice").proof(json!({
        "type": "RsaSignature2018",
        "verification_method": did_key(&alice.verifying_key()),
        "signature": "AAAA"
    }));
    match store.append(proof) {
        Err(Error::InvalidSignature { reason, .. }) => {
            assert!(reason.contains("not supported"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // Nothing refused was written.
    assert_eq!(store.last_position().unwrap(), 1);
}

#[test]
fn a_signature_by_another_key_than_the_actors_is_refused() {
    let store = Store::in_memory().unwrap();
    let alice = key(1);
    let mallory = key(2);
    store
        .register_agent_key("alice", &alice.verifying_key())
        .unwrap();
    match store.append(comment("alice").sign(&mallory)) {
        Err(Error::InvalidSignature { reason, .. }) => {
            assert!(
                reason.contains("not a key registered for actor \"alice\""),
                "{reason}"
            );
            assert!(
                reason.contains(&did_key(&mallory.verifying_key())),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A second registered key (a rotation) is accepted.
    store
        .register_agent_key("alice", &mallory.verifying_key())
        .unwrap();
    store.append(comment("alice").sign(&mallory)).unwrap();
    assert_eq!(store.agent_keys("alice").unwrap().len(), 2);
}

#[test]
fn unsigned_events_are_refused_when_required_and_only_from_actors_with_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.oidb");
    let alice = key(1);
    {
        let store = Store::open(&path).unwrap();
        store
            .register_agent_key("alice", &alice.verifying_key())
            .unwrap();
        // Not required yet: unsigned is fine.
        store.append(comment("alice")).unwrap();
        store.require_signatures(true).unwrap();
    }
    // The policy is kept in the file.
    let store = Store::open(&path).unwrap();
    assert!(store.signatures_required().unwrap());
    match store.append(comment("alice")) {
        Err(Error::SignatureRequired { actor, .. }) => assert_eq!(actor, "alice"),
        other => panic!("{other:?}"),
    }
    store.append(comment("alice").sign(&alice)).unwrap();
    store.append(comment("carol")).unwrap(); // no key, no requirement

    // Checkpoints are logged by the store's actor, which then must sign them too.
    let auditor = key(3);
    let audited = Store::builder()
        .actor("auditor")
        .open(dir.path().join("a.oidb"))
        .unwrap();
    audited
        .register_agent_key("auditor", &auditor.verifying_key())
        .unwrap();
    audited.require_signatures(true).unwrap();
    audited
        .log_event("intent-1", EventType::Comment, json!({}))
        .unwrap_err();
    audited.append(comment("auditor").sign(&auditor)).unwrap();
    let scope = CheckpointScope::intent("intent-1");
    assert!(matches!(
        audited.create_checkpoint(&scope),
        Err(Error::SignatureRequired { .. })
    ));
    assert!(audited.all_checkpoints().unwrap().is_empty());
    assert!(matches!(
        audited.create_signed_checkpoint(&scope, &alice),
        Err(Error::InvalidSignature { .. })
    ));
    let checkpoint = audited
        .create_signed_checkpoint(&scope, &auditor)
        .unwrap()
        .unwrap();
    assert_eq!(audited.all_checkpoints().unwrap(), vec![checkpoint]);

    store.require_signatures(false).unwrap();
    store.append(comment("alice")).unwrap();
}

#[test]
fn signed_checkpoints_verify_and_show_tampering() {
    let store = Store::in_memory().unwrap();
    store
        .log_event("intent-1", EventType::Comment, json!({"n": 1}))
        .unwrap();
    let server = key(5);
    let checkpoint = store
        .create_signed_checkpoint(&CheckpointScope::intent("intent-1"), &server)
        .unwrap()
        .unwrap();
    assert_eq!(
        checkpoint.signed_by.as_deref(),
        Some(did_key(&server.verifying_key()).as_str())
    );
    checkpoint.verify_signature().unwrap();
    let json = serde_json::to_value(&checkpoint).unwrap();
    assert!(json["signature"].is_string());
    assert_eq!(json["signed_by"], did_key(&server.verifying_key()));
    assert!(store.verify_checkpoint(&checkpoint).unwrap().valid);
    // The event that logged it is signed by the same key.
    let logged = store
        .get_events("intent-1", oidb::EventFilter::new())
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        verify_event_signature(&logged).unwrap(),
        checkpoint.signed_by.clone()
    );

    let mut forged = checkpoint.clone();
    forged.created_at += chrono::Duration::seconds(1);
    assert!(forged.verify_signature().is_err());
    let check = store.verify_checkpoint(&forged).unwrap();
    assert!(!check.valid);
    assert!(matches!(
        check.problems[..],
        [CheckpointProblem::BadSignature { .. }]
    ));
}

#[test]
fn did_keys_read_and_write_as_the_did_key_method_says() {
    // The example key of RFC-0018 and the did:key method.
    let example = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
    let key = parse_did_key(example).unwrap();
    assert_eq!(did_key(&key), example);
    assert_eq!(parse_did_key(&format!("{example}#z6Mk")).unwrap(), key);
    assert_eq!(parse_public_key(&public_key_text(&key)).unwrap(), key);
    assert_eq!(parse_public_key(example).unwrap(), key);
    assert!(public_key_text(&key).starts_with("ed25519:"));

    for seed in 0..20u8 {
        let did = did_key(&SigningKey::from_bytes(&[seed; 32]).verifying_key());
        assert!(did.starts_with("did:key:z6Mk"), "{did}");
        assert_eq!(did_key(&parse_did_key(&did).unwrap()), did);
    }
    for bad in [
        "did:web:example.com",
        "did:key:6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
        "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2do0",
        "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme", // secp256k1
        "ed25519:AAAA",
    ] {
        assert!(
            matches!(parse_public_key(bad), Err(Error::InvalidKey(_))),
            "{bad}"
        );
    }
}

#[test]
fn signed_events_survive_export_and_import() {
    let source = Store::in_memory().unwrap();
    let alice = key(1);
    source
        .register_agent_key("alice", &alice.verifying_key())
        .unwrap();
    source.require_signatures(true).unwrap();
    for i in 0..3 {
        source
            .append(
                NewEvent::new("intent-1", EventType::Comment, "alice")
                    .payload(json!({"i": i}))
                    .sign(&alice),
            )
            .unwrap();
    }
    let mut export = Vec::new();
    source
        .export_json(&mut export, &oidb::Query::new())
        .unwrap();

    let target = Store::in_memory().unwrap();
    target
        .register_agent_key("alice", &alice.verifying_key())
        .unwrap();
    target.require_signatures(true).unwrap();
    let report = target.import_json(export.as_slice()).unwrap();
    assert_eq!(report.appended, 3);
    assert!(target.verify_all(|_| {}).unwrap().valid);

    // The same export into a store where alice has another key is refused whole.
    let other = Store::in_memory().unwrap();
    other
        .register_agent_key("alice", &key(4).verifying_key())
        .unwrap();
    // An import names the line of the refused event and says why.
    match other.import_json(export.as_slice()) {
        Err(Error::Import { line, reason, .. }) => {
            assert_eq!(line, 1);
            assert!(reason.contains("signature"), "{reason}");
        }
        other => panic!("expected the import to be refused, got {other:?}"),
    }
    assert_eq!(other.last_position().unwrap(), 0);
}

#[test]
fn verification_rechecks_stored_signatures() {
    use redb::{ReadableDatabase, ReadableTable, TableDefinition};
    const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.oidb");
    let (position, signature) = {
        let store = Store::open(&path).unwrap();
        let event = store.append(comment("alice").sign(&key(1))).unwrap();
        let signature = event.proof.unwrap()["signature"]
            .as_str()
            .unwrap()
            .to_owned();
        (event.position, signature)
    };
    {
        let db = redb::Database::open(&path).unwrap();
        let mut bytes = {
            let txn = db.begin_read().unwrap();
            let table = txn.open_table(EVENTS).unwrap();
            let bytes = table.get(position).unwrap().unwrap().value().to_vec();
            bytes
        };
        let at = bytes
            .windows(signature.len())
            .position(|w| w == signature.as_bytes())
            .unwrap();
        bytes[at + 3] = if bytes[at + 3] == b'A' { b'B' } else { b'A' };
        let txn = db.begin_write().unwrap();
        txn.open_table(EVENTS)
            .unwrap()
            .insert(position, bytes.as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    let report = store.verify_chain("intent-1").unwrap();
    let kinds: Vec<_> = report.breaks.iter().map(|b| (b.kind, b.sequence)).collect();
    assert_eq!(
        kinds,
        vec![
            (oidb::verify::BreakKind::HashMismatch, 1),
            (oidb::verify::BreakKind::BadSignature, 1)
        ]
    );
}
