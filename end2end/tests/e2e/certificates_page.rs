//! The certificates page (issue 15) in Chromium against the real server: an
//! admin uploads a PEM chain and key that expire in 10 days; the page lists
//! its domain with "expires in 9 days" (8-10) and the 14-day warning, also in
//! the first server-rendered HTML. A key of another certificate is refused
//! next to the key box. Deleting the upload removes the row and the warning.

use crate::support;

use anyhow::{ensure, Context};
use chrono::Datelike;
use server::testkit::{tls::TestCa, wait::unique_suffix};
use support::{page::UI_LIMIT, Harness};

const ADMIN: &str = "certs-admin";
const PASSWORD: &str = "certs-correct-horse-battery";

#[tokio::test]
async fn an_admin_uploads_a_certificate_sees_its_expiry_warning_and_deletes_it() {
    support::run("certificates_page", |h| Box::pin(flow(h))).await;
}

fn ymd(t: chrono::DateTime<chrono::Utc>) -> (i32, u8, u8) {
    (t.year(), t.month() as u8, t.day() as u8)
}

async fn flow(h: &Harness) -> anyhow::Result<()> {
    h.set_up_admin(ADMIN, PASSWORD).await?;
    let ca = TestCa::new()?;
    let name = format!("soon-{}.certs.test", unique_suffix());
    let now = chrono::Utc::now();
    let soon = ca.issue_valid(
        &[&name],
        ymd(now - chrono::Duration::days(30)),
        ymd(now + chrono::Duration::days(10)),
    )?;
    let stranger = ca.issue(&["stranger.certs.test"])?;

    h.open("/certificates").await?;
    h.wait_main_hydrated().await?;
    ensure!(h.text_of("#certificates-warning").await?.is_none(), "no warning without certificates");

    // A key of another certificate: refused next to the key box, nothing listed.
    h.fill("#certificate-chain", &soon.chain_pem).await?;
    h.fill("#certificate-key", &stranger.key_pem).await?;
    h.click("#certificate-upload").await?;
    let refused =
        h.poll(UI_LIMIT, "the key's error", || async { h.text_of("#certificate-key-error").await }).await?;
    ensure!(refused.contains("does not belong to the certificate"), "key error: {refused:?}");
    ensure!(h.find_all("#certificates tbody tr").await?.is_empty(), "a refused upload is not listed");

    h.fill("#certificate-key", &soon.key_pem).await?;
    h.click("#certificate-upload").await?;
    let done =
        h.poll(UI_LIMIT, "the upload notice", || async { h.text_of("#certificate-uploaded").await }).await?;
    ensure!(done == format!("Serving {name}."), "notice {done:?}");
    let row = h.text_of("#certificates tbody tr").await?.context("the upload is listed")?;
    ensure!(row.contains(&name) && row.contains(&format!("uploaded by {ADMIN}")), "row {row:?}");
    // Midnight UTC of the 10th day from now; 8 when a run crosses midnight.
    ensure!((8..=10).any(|d| row.contains(&format!("expires in {d} days"))), "row {row:?}");
    let warning = h.text_of("#certificates-warning").await?.context("the 14-day warning")?;
    ensure!(warning.starts_with("1 certificate expires within 14 days"), "warning {warning:?}");

    // With a row listed, the page fits a phone and a desktop, no sideways scrolling.
    for (width, height) in crate::responsive_layout::SIZES {
        h.browser.set_window_size(width, height).await?;
        h.open("/certificates").await?;
        h.wait_main_hydrated().await?;
        crate::responsive_layout::check_fits(h, "/certificates", width).await?;
    }

    // The first HTML of the page already warns (server-rendered).
    let html = h.js("return fetch('/certificates').then(r => r.text())", vec![]).await?;
    let html = html.as_str().context("fetch('/certificates') gave no text")?;
    ensure!(
        html.contains("certificates-warning") && html.contains(&name),
        "SSR HTML lacks the warning or name"
    );

    h.click("#certificates tbody tr button.danger").await?;
    h.poll(UI_LIMIT, "the row to go", || async {
        Ok(h.find_all("#certificates tbody tr").await?.is_empty().then_some(()))
    })
    .await?;
    ensure!(h.text_of("#certificates-warning").await?.is_none(), "the warning went with the certificate");
    Ok(())
}
