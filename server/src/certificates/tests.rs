use app::wire::{CertificateForm, CertificateState};

use super::{check, standing, MAX_CHAIN};
use crate::{engine::EngineError, testkit::tls::TestCa};

const DAY: i64 = 86_400;

fn refused(form: &CertificateForm, now: i64) -> (&'static str, String) {
    match check(form, now) {
        Err(EngineError::Invalid { field, message }) => (field, message),
        other => panic!("one field refused expected, got {:?}", other.map(|c| c.names)),
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[test]
fn a_chain_and_its_key_pass_and_are_served_for_their_names() -> anyhow::Result<()> {
    let ca = TestCa::new()?;
    let issued = ca.issue(&["App.Example.com", "*.apps.example.com"])?;
    let form = CertificateForm { chain_pem: issued.chain_pem.clone(), key_pem: issued.key_pem };
    let cert = check(&form, now()).map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(cert.names, ["app.example.com", "*.apps.example.com"]);
    // Only the certificates are kept of the chain, re-encoded: a key pasted
    // into the chain box is never stored in the clear.
    let pasted = CertificateForm { chain_pem: issued.chain_pem.clone() + &form.key_pem, ..form.clone() };
    let kept = check(&pasted, now()).map_err(|e| anyhow::anyhow!("{e}"))?.chain_pem();
    assert!(!kept.contains("PRIVATE KEY"), "{kept}");
    assert_eq!(kept.matches("BEGIN CERTIFICATE").count(), 2, "leaf and CA: {kept}");
    assert_eq!(cert.fingerprint().len(), 64);
    Ok(())
}

#[test]
fn garbage_a_foreign_key_and_dates_are_refused_naming_the_field() -> anyhow::Result<()> {
    let ca = TestCa::new()?;
    let good = ca.issue(&["a.example.com"])?;
    let other = ca.issue(&["b.example.com"])?;
    let form = |chain: &str, key: &str| CertificateForm { chain_pem: chain.into(), key_pem: key.into() };

    let (field, message) = refused(&form("not a certificate", &good.key_pem), now());
    assert_eq!(field, "chain_pem", "{message}");
    assert!(message.contains("no PEM certificate"), "{message}");
    let (field, message) = refused(&form("-----BEGIN CERTIFICATE-----\nAAAA\n", &good.key_pem), now());
    assert_eq!(field, "chain_pem", "{message}");
    let (field, message) = refused(&form(&good.chain_pem, "junk"), now());
    assert_eq!((field, message.as_str()), ("key_pem", "holds no PEM private key (PKCS#8, PKCS#1 or SEC1)"));
    let (field, message) = refused(&form(&good.chain_pem, &other.key_pem), now());
    assert_eq!((field, message.as_str()), ("key_pem", "the private key does not belong to the certificate"));

    let expired = ca.issue_valid(&["old.example.com"], (2020, 1, 1), (2021, 1, 1))?;
    let (field, message) = refused(&form(&expired.chain_pem, &expired.key_pem), now());
    assert_eq!(field, "chain_pem");
    assert!(message.starts_with("the certificate expired at 2021-01-01"), "{message}");
    let early = ca.issue_valid(&["new.example.com"], (2090, 1, 1), (2091, 1, 1))?;
    let (field, message) = refused(&form(&early.chain_pem, &early.key_pem), now());
    assert_eq!(field, "chain_pem");
    assert!(message.contains("valid only from 2090-01-01"), "{message}");

    let big = "A".repeat(MAX_CHAIN + 1);
    let Err(EngineError::Fields(list)) = check(&form(&big, ""), now()) else { panic!("two fields expected") };
    let named: Vec<_> = list.iter().map(|e| (e.field, e.message.as_str())).collect();
    assert_eq!(
        named,
        [("chain_pem", "must be at most 64 KiB of PEM"), ("key_pem", "is required (PEM text)")]
    );
    Ok(())
}

#[test]
fn standing_warns_fourteen_days_ahead() {
    let now = 1_000 * DAY;
    assert_eq!(standing(0, now + 30 * DAY, now), (CertificateState::Valid, 30));
    assert_eq!(standing(0, now + 14 * DAY, now), (CertificateState::Valid, 14));
    assert_eq!(standing(0, now + 14 * DAY - 1, now), (CertificateState::Expiring, 13));
    assert_eq!(standing(0, now + 1, now), (CertificateState::Expiring, 0));
    assert_eq!(standing(0, now - 1, now), (CertificateState::Expired, -1));
    assert_eq!(standing(now + 10, now + 30 * DAY, now).0, CertificateState::Expired);
}
