//! `envs`: where every environment stands, read back from the state each one publishes in SSM
//! (`<prefix>/<env>/migrations/state`) and its parameter history, and where each of a fleet's
//! targets stands (`<prefix>/<env>/migrations/targets/<name>/state`), against the local
//! migration set: one row per environment, each fleet summarised, and which migrations ran
//! where; as an aligned table, JSON, or a self-contained HTML page.

mod discovery;
pub mod fleet;
pub mod grid;
mod html;
mod model;
mod table;
mod view;
mod warnings;

pub use discovery::{classify, read, read_profiles, Found};
pub use html::html;
pub use model::{rows, Discovered, EnvironmentRow, Published, PublishedTarget, Run};
pub use table::table;
pub use view::{view, View};
pub use warnings::{duration_warnings, root_prefix, warn_about_durations};
