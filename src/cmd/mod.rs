//! One module per subcommand.

pub mod agent;
pub mod bench;
pub mod config;
pub mod doctor;
pub mod fit;
pub mod generate;
pub mod gpu_truth;
pub mod history;
pub mod hub;
pub mod mcp;
pub mod remote_write;
pub mod replay;
pub mod status;
pub mod top;
