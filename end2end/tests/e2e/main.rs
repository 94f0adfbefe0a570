//! End-to-end tests: the built server driven by headless Chromium, in one
//! test binary (one link). The Makefile runs them one at a time.

mod certificates_page;
mod dashboard_flow;
mod navigation;
mod operate_flow;
mod pipeline_page;
mod project_page;
mod responsive_layout;
mod status_page;
mod support;
