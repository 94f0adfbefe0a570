//! Forge webhooks (GitHub, Gitea, GitLab): `POST /hooks/{forge}/{service id}`
//! and the project hook `POST /hooks/{forge}/projects/{project id}`.
//!
//! * [`verify`]: signatures and tokens, compared in constant time.
//! * [`payload`]: which forge, which event, the delivery id, and the branch
//!   and commit of a push.
//! * [`body`]: the body read in chunks under [`MAX_BODY`], its content type
//!   (JSON, or a form with a `payload` field, as GitHub and Gitea can send)
//!   and which bytes the forge signed.
//! * `crate::http::webhook`: the handler. Order of checks: body limit ([`MAX_BODY`],
//!   413) → service exists (404) → content type (415) → signature (401) →
//!   JSON (400; serde_json's recursion limit refuses deep nesting) → event.
//!   A push on the service's
//!   branch queues a build of exactly the pushed commit (and a deploy when
//!   auto-deploy is on); pings are answered; other events and other branches
//!   are acknowledged and ignored.
//! * [`deliveries`]: every delivery to a known service is recorded with its
//!   status and reason (never the body or the signature), and delivery ids
//!   and GitLab's `Idempotency-Key` are deduplicated.
//! * [`secret`]: the per-service secret (32 random bytes, hex, sealed at
//!   rest) and the caller-facing use-cases: [`Engine::webhook_info`],
//!   [`Engine::rotate_webhook_secret`], [`Engine::list_deliveries`];
//!   [`project`]: the same for a project's hook.
//! * [`fanout`]: which services of a project a push to its hook builds.
//!
//! ## Exactly-once builds
//!
//! Only a *verified* delivery can claim its id: the claim is an insert with
//! `dedupe = 1`, and the partial unique indexes on (service, forge, delivery
//! id) and on (service, forge, idempotency key) `WHERE dedupe = 1` let
//! exactly one such row exist per id and per key, also under concurrency
//! (the insert says `ON CONFLICT DO NOTHING`; no row back means somebody
//! claimed the id or the key first, and this delivery is recorded as a
//! `duplicate`). GitLab keeps `Idempotency-Key` across the retries of one
//! event while the event UUID may change, so either match is a duplicate. Forged, malformed and otherwise rejected deliveries are
//! recorded with `dedupe = 0`, so they never take an id away from the real
//! delivery.
//!
//! The build is queued by [`Engine::enqueue_build`], which writes the build
//! and its job in a transaction of its own, so the delivery cannot share it.
//! The steps are therefore: (1) claim the id, status `claimed`; (2) queue the
//! build; (3) set the delivery to `built` with the build id. A crash after
//! (1) and before (2) leaves a `claimed` delivery without a build: the record
//! is kept and a redelivery of the same id is a duplicate, so nothing is ever
//! built twice (the admin sees the stuck delivery and can build by hand).
//! A crash between (2) and (3) leaves the build queued and the delivery
//! `claimed`; the build's actor and trigger still say where it came from.
//! If queueing fails without a crash, the claim is released (`rejected`,
//! `dedupe = 0`) so the forge's retry can build.

pub mod body;
pub mod deliveries;
pub mod fanout;
pub mod payload;
pub mod project;
pub mod secret;
pub mod verify;

pub use deliveries::Delivery;
pub use payload::Forge;
pub use project::ProjectWebhookInfo;
pub use secret::{HookPaths, WebhookInfo};

/// The largest body accepted: GitHub caps its payloads at 25 MB, and a
/// legitimate push of 2,048 commits comes close, so 25 MiB plus a margin of
/// 512 KiB. Bodies are read in chunks and the read stops as soon as this is
/// passed ([`body::read`]).
pub const MAX_BODY: usize = 25 * 1024 * 1024 + 512 * 1024;
