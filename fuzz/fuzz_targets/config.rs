//! Configuration files: the agent's and the hub's TOML, parsed and validated, never panic;
//! errors render to a message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = sitewatch_agent::config::AgentConfig::from_toml_str(s) {
        let _ = e.to_string();
    }
    if let Err(e) = sitewatch_hub::config::HubConfig::from_toml_str(s) {
        let _ = e.to_string();
    }
});
