//! What to do about a source that could not be read: a pure mapping from (source name, reason)
//! to a verdict — not applicable to this machine, or a failure with the fix.
//!
//! Source names are the snapshot's (`host.rapl`, `gpu.nvml`, `engine.llamacpp[URL].metrics`,
//! …, built in `infermon_model::derive`), plus `gpu.<source>[<index>]` for one GPU whose files
//! or device answered "permission denied". Reasons are matched on the texts the readers in
//! `infermon-hw` and `infermon-engines` produce; the tests below use those exact texts.

use infermon_hw::PciGpus;

/// What doctor knows about the machine besides the readings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts {
    /// Display controllers on the PCI bus; `None` when the bus could not be read (then no
    /// GPU source is called not applicable).
    pub pci: Option<PciGpus>,
}

/// The verdict on a source that was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The source does not apply to this machine (no such hardware): counts as ok. The text
    /// says why.
    NotApplicable(String),
    /// A failure; the text is the fix.
    Fail(String),
}

/// The RAPL fix for "permission denied" on `energy_uj`.
const RAPL_PERMISSION: &str = "energy_uj is root-only since Linux 5.10 because fine-grained \
     energy readings leak secrets (PLATYPUS side channel, CVE-2020-8694); if that risk is \
     acceptable on this node: for a test `sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj` \
     (until reboot); permanently a udev rule, e.g. /etc/udev/rules.d/70-infermon-rapl.rules with \
     `SUBSYSTEM==\"powercap\", ACTION==\"add\", RUN+=\"/bin/chmod o+r /sys%p/energy_uj\"` (or \
     `RUN+=\"/bin/chgrp infermon /sys%p/energy_uj\", RUN+=\"/bin/chmod g+r /sys%p/energy_uj\"` to \
     grant one group only); or run the agent as root";

/// The RAPL verdict when there is no powercap interface at all.
const RAPL_ABSENT: &str = "nothing to fix on this machine: it has no RAPL powercap interface \
     (a virtual machine, a CPU without RAPL, or a container that hides /sys/class/powercap); \
     on bare metal with an Intel or AMD Zen CPU try `sudo modprobe intel_rapl_msr`; CPU power \
     and tokens per joule stay unknown, GPU power is still read";

/// The fix for a GPU device node or GPU file without permission.
const GPU_GROUPS: &str = "add the agent's user to the `render` and `video` groups (`sudo \
     usermod -aG render,video USER`, then log in again or restart the service) and check \
     `ls -l /dev/dri /dev/nvidia*`; or run the agent as root";

/// Says what to do about `source`, which could not be read for `reason`.
pub fn judge(source: &str, reason: &str, facts: &Facts) -> Verdict {
    let r = reason.to_ascii_lowercase();
    if let Some(rest) = source.strip_prefix("engine.") {
        return Verdict::Fail(engine_fix(rest, &r));
    }
    match source {
        "host.rapl" => return Verdict::Fail(rapl_fix(&r)),
        "host.pressure" if r.contains("psi not available") => {
            return Verdict::Fail(
                "boot the kernel with `psi=1` (add it to GRUB_CMDLINE_LINUX in /etc/default/grub, \
                 run `sudo update-grub` and reboot); a kernel built without CONFIG_PSI (before \
                 Linux 4.20, or a custom build) needs another kernel"
                    .into(),
            )
        }
        "host.temperatures" if r.starts_with("no temperature sensors") => {
            return Verdict::Fail(
                "load the CPU sensor driver: `sudo modprobe coretemp` (Intel) or `sudo modprobe \
                 k10temp` (AMD), and list it in /etc/modules-load.d/ to keep it; a virtual \
                 machine has no sensors (nothing to fix there)"
                    .into(),
            )
        }
        "host.cpu_freq" if r.contains("no cpufreq driver") => {
            return Verdict::Fail(
                "nothing to fix in a virtual machine (it has no CPU frequency); on bare metal \
                 enable a cpufreq driver (intel_pstate, amd-pstate or acpi-cpufreq; check \
                 `cpupower frequency-info`)"
                    .into(),
            )
        }
        "host.cpu_throttle" if r.contains("no thermal_throttle counters") => {
            return Verdict::NotApplicable(
                "only Intel CPUs expose thermal_throttle counters; CPU thermal state comes from \
                 the temperatures instead"
                    .into(),
            )
        }
        "gpu.nvml" => return nvml_verdict(&r, facts),
        "gpu.amdgpu" => return amdgpu_verdict(&r, facts),
        _ => {}
    }
    if source.starts_with("gpu.") && r.contains("permission denied") {
        return Verdict::Fail(GPU_GROUPS.into());
    }
    Verdict::Fail(file_fix(&r))
}

/// RAPL: permission denied, absent, or something else.
fn rapl_fix(r: &str) -> String {
    if r.contains("permission denied") {
        RAPL_PERMISSION.into()
    } else if r.contains("no rapl powercap zones") || r.contains("no intel-rapl zones") {
        RAPL_ABSENT.into()
    } else {
        file_fix(r)
    }
}

/// NVML: not applicable without an NVIDIA GPU on the PCI bus; otherwise by reason.
fn nvml_verdict(r: &str, facts: &Facts) -> Verdict {
    if facts.pci.is_some_and(|p| p.nvidia == 0) {
        return Verdict::NotApplicable(
            "no NVIDIA GPU on the PCI bus: NVML is not needed on this machine".into(),
        );
    }
    let fix = if r.contains("libnvidia-ml.so.1 could not be loaded") {
        "libnvidia-ml.so.1 ships with the NVIDIA driver: install the driver (Debian: \
         `sudo apt install nvidia-driver` or just `libnvidia-ml1`, which `nvidia-smi` also \
         needs; Ubuntu: `libnvidia-compute-<version>`); in a container run it with the NVIDIA \
         Container Toolkit (`--gpus all`), which mounts the library"
    } else if r.contains("kernel driver is not loaded") {
        "load the NVIDIA kernel driver: `sudo modprobe nvidia` (see `dmesg | grep -i nvidia`; \
         after a driver upgrade, reboot)"
    } else if r.contains("permission denied") {
        GPU_GROUPS
    } else if r.contains("found no nvidia gpu") {
        "the driver sees no GPU although one is on the PCI bus: check `nvidia-smi` and \
         `dmesg | grep -i nvidia` (GPU fallen off the bus, or driver and kernel module versions \
         differ: reboot)"
    } else {
        "run `nvidia-smi`: it uses the same library and says what is wrong"
    };
    Verdict::Fail(fix.into())
}

/// amdgpu: not applicable without an AMD GPU on the PCI bus; otherwise by reason.
fn amdgpu_verdict(r: &str, facts: &Facts) -> Verdict {
    if facts.pci.is_some_and(|p| p.amd == 0) {
        return Verdict::NotApplicable(
            "no AMD GPU on the PCI bus: amdgpu is not needed on this machine".into(),
        );
    }
    if r.contains("permission denied") {
        return Verdict::Fail(GPU_GROUPS.into());
    }
    if r.contains("no amdgpu card") || r.contains("no such file") {
        return Verdict::Fail(
            "an AMD GPU is on the PCI bus but the amdgpu driver does not drive it: `sudo \
             modprobe amdgpu` and check `lspci -k` (\"Kernel driver in use: amdgpu\"); in a \
             container, bind-mount the host's /sys"
                .into(),
        );
    }
    Verdict::Fail(file_fix(r))
}

/// An engine endpoint: `rest` is the source name after `engine.`, e.g.
/// `llamacpp[http://127.0.0.1:8080].metrics`.
fn engine_fix(rest: &str, r: &str) -> String {
    let llamacpp = rest.starts_with("llamacpp[");
    if r.contains("started without --metrics") {
        return "restart llama-server with `--metrics` (token counters, requests running and \
                waiting); health, model and slots are read without it"
            .into();
    }
    if r.contains("slots endpoint disabled") {
        return "restart llama-server without `--no-slots` (slot use and tokens in flight)".into();
    }
    if looks_like_html(r) {
        return "this URL answers a web page, not the engine's API: probably a web UI or a \
                reverse proxy on that port; point `--engine` at the server's API port \
                (llama-server's `--port`, vLLM 8000, SGLang 30000, Ollama 11434, LM Studio 1234)"
            .into();
    }
    if r.contains("connection failed") {
        return "nothing answers at this URL: start the engine, or correct the host:port given \
                to `--engine KIND=URL` (or the config's [[engine]] url)"
            .into();
    }
    if r.contains("timed out") {
        return "the engine did not answer within agent.engine_timeout: it may be hung or \
                overloaded, or a firewall drops the packets; check the URL with `curl`, or \
                raise engine_timeout"
            .into();
    }
    if r.contains("is this a llama-server?") || r.contains("answered http 404") {
        return "the server at this URL is not the configured kind: check KIND in `--engine \
                KIND=URL` and give the base URL (no /v1 or other path)"
            .into();
    }
    if r.contains("loading model") {
        return "the server is up but still loading its model: wait, and read its log if it \
                stays so"
            .into();
    }
    if r.contains("answered http 401") || r.contains("answered http 403") {
        return "the server refuses unauthenticated requests: infermon reads engines without \
                a key, so expose the monitoring endpoints without one (llama-server: \
                `--api-key` also guards /metrics and /slots)"
            .into();
    }
    if llamacpp {
        "check that a llama-server answers at this URL: `curl -s URL/health` should say \
         {\"status\":\"ok\"}; its log says more"
            .into()
    } else {
        "check that the engine at this URL is of the configured kind and healthy (`curl` the \
         URL named in the reason; the engine's log says more)"
            .into()
    }
}

/// Whether a reason quotes an HTML body.
fn looks_like_html(r: &str) -> bool {
    r.contains("looks like html") || r.contains("<!doctype") || r.contains("<html")
}

/// A `/proc` or `/sys` file that could not be read or parsed.
fn file_fix(r: &str) -> String {
    if r.contains("permission denied") {
        "give the agent's user read access to the file named in the reason, or run the agent \
         as root"
            .into()
    } else if r.contains("no such file") {
        "this kernel or container does not provide the file named in the reason: in a \
         container, bind-mount the host's /proc and /sys and point the agent's root at them"
            .into()
    } else {
        "the file has content infermon does not understand: please report it with the file \
         and `uname -r` attached"
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpus(nvidia: u32, amd: u32) -> Facts {
        Facts {
            pci: Some(PciGpus {
                nvidia,
                amd,
                other: 0,
            }),
        }
    }

    fn fix(source: &str, reason: &str, facts: &Facts) -> String {
        match judge(source, reason, facts) {
            Verdict::Fail(f) => f,
            Verdict::NotApplicable(w) => panic!("{source}: not applicable ({w}), want a fix"),
        }
    }

    /// Every (source, reason) pair the readers produce that doctor knows, with the fact set.
    fn cases() -> Vec<(&'static str, &'static str, Facts)> {
        let none = Facts::default();
        vec![
            ("host.rapl", "/sys/class/powercap/intel-rapl:0/energy_uj: permission denied (os error 13): RAPL energy counters are root-only since Linux 5.10 (CVE-2020-8694); run the agent as root or make energy_uj readable (e.g. a udev rule)", none),
            ("host.rapl", "/sys/class/powercap: no such file or directory (os error 2): no RAPL powercap zones (no RAPL support, intel_rapl driver not loaded, or hidden in a container)", none),
            ("host.rapl", "/sys/class/powercap: no intel-rapl zones (no RAPL support, driver not loaded, or hidden in a container)", none),
            ("host.pressure", "/proc/pressure: PSI not available (kernel without CONFIG_PSI or psi=0)", none),
            ("host.pressure", "/proc/pressure/memory: field \"some avg10\" has value \"x\": expected a percentage", none),
            ("host.temperatures", "no temperature sensors in /sys/class/thermal or CPU sensors (coretemp, k10temp, zenpower) in /sys/class/hwmon", none),
            ("host.cpu_freq", "/sys/devices/system/cpu: no cpu*/cpufreq/scaling_cur_freq (no cpufreq driver, e.g. in a virtual machine)", none),
            ("host.memory", "/proc/meminfo: no such file or directory (os error 2)", none),
            ("host.cpu", "/proc/stat: permission denied (os error 13)", none),
            ("gpu.nvml", "libnvidia-ml.so.1 could not be loaded (no NVIDIA driver): libnvidia-ml.so.1: cannot open shared object file: No such file or directory", gpus(1, 0)),
            ("gpu.nvml", "libnvidia-ml.so.1 could not be loaded (no NVIDIA driver): x", none),
            ("gpu.nvml", "the NVIDIA kernel driver is not loaded", gpus(1, 0)),
            ("gpu.nvml", "permission denied opening the NVIDIA devices (/dev/nvidia*)", gpus(1, 0)),
            ("gpu.nvml", "nvml loaded but found no NVIDIA GPU", gpus(2, 0)),
            ("gpu.nvml", "nvml init failed: unknown error", gpus(1, 0)),
            ("gpu.amdgpu", "/sys/class/drm: no amdgpu card", gpus(0, 1)),
            ("gpu.amdgpu", "/sys/class/drm: permission denied (os error 13)", gpus(0, 1)),
            ("gpu.amdgpu[0]", "busy: /sys/class/drm/card0/device/gpu_busy_percent: permission denied (os error 13)", gpus(0, 1)),
            ("engine.llamacpp[http://127.0.0.1:8080].metrics", "http://127.0.0.1:8080/metrics answered 501: the server was started without --metrics", none),
            ("engine.llamacpp[http://127.0.0.1:8080].slots", "http://127.0.0.1:8080/slots answered 501: slots endpoint disabled (--no-slots)", none),
            ("engine.llamacpp[http://127.0.0.1:3000].metrics", "http://127.0.0.1:3000/metrics: line 1: body looks like html, not prometheus text: \"<!DOCTYPE html><html>\": expected metric samples and # comments", none),
            ("engine.llamacpp[http://127.0.0.1:3000].props", "/props is not JSON (expected value at line 1 column 1): \"<!DOCTYPE html><html><body>\"", none),
            ("engine.llamacpp[http://127.0.0.1:3000].health", "http://127.0.0.1:3000/health: http 200 with a body that is not llama-server's health JSON: \"<!DOCTYPE html><html>\"", none),
            ("engine.llamacpp[http://127.0.0.1:1].health", "GET http://127.0.0.1:1/health: connection failed", none),
            ("engine.vllm[http://10.0.0.2:8000].health", "GET http://10.0.0.2:8000/health timed out", none),
            ("engine.llamacpp[http://127.0.0.1:8080].metrics", "http://127.0.0.1:8080/metrics: no \"llamacpp:prompt_tokens_total\" in the metrics (is this a llama-server?)", none),
            ("engine.llamacpp[http://127.0.0.1:8080].health", "http://127.0.0.1:8080/health answered HTTP 503: loading model", none),
            ("engine.vllm[http://127.0.0.1:8000].props", "http://127.0.0.1:8000/v1/models answered HTTP 401: \"{}\"", none),
            ("engine.ollama[http://127.0.0.1:11434].models", "http://127.0.0.1:11434/api/ps answered HTTP 500: \"oops\"", none),
        ]
    }

    #[test]
    fn every_failure_has_a_fix_and_every_not_applicable_a_reason() {
        for (source, reason, facts) in cases() {
            match judge(source, reason, &facts) {
                Verdict::Fail(f) => assert!(!f.trim().is_empty(), "{source}: {reason}"),
                Verdict::NotApplicable(w) => assert!(!w.trim().is_empty(), "{source}"),
            }
        }
    }

    #[test]
    fn rapl_permission_denied_gives_chmod_udev_and_the_security_reason() {
        let (s, r, f) = cases()[0];
        let text = fix(s, r, &f);
        assert!(
            text.contains("sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj"),
            "{text}"
        );
        assert!(
            text.contains(
                r#"SUBSYSTEM=="powercap", ACTION=="add", RUN+="/bin/chmod o+r /sys%p/energy_uj""#
            ),
            "{text}"
        );
        assert!(text.contains("PLATYPUS"), "{text}");
    }

    #[test]
    fn rapl_absent_says_nothing_to_fix_but_fails() {
        for (s, r, f) in &cases()[1..3] {
            assert!(
                fix(s, r, f).starts_with("nothing to fix on this machine"),
                "{r}"
            );
        }
    }

    #[test]
    fn psi_missing_says_boot_with_psi_1() {
        let (s, r, f) = cases()[3];
        assert!(fix(s, r, &f).contains("`psi=1`"));
        // malformed PSI is not "boot with psi=1"
        let (s, r, f) = cases()[4];
        assert!(fix(s, r, &f).contains("does not understand"));
    }

    #[test]
    fn missing_sensors_and_cpufreq() {
        let (s, r, f) = cases()[5];
        assert!(fix(s, r, &f).contains("modprobe coretemp"));
        let (s, r, f) = cases()[6];
        assert!(fix(s, r, &f).starts_with("nothing to fix in a virtual machine"));
        let throttle = "/sys/devices/system/cpu/cpu0/thermal_throttle: no thermal_throttle counters (not an Intel CPU or not exposed)";
        assert!(matches!(
            judge("host.cpu_throttle", throttle, &Facts::default()),
            Verdict::NotApplicable(_)
        ));
    }

    #[test]
    fn proc_files_missing_or_forbidden() {
        let (s, r, f) = cases()[7];
        assert!(fix(s, r, &f).contains("bind-mount"));
        let (s, r, f) = cases()[8];
        assert!(fix(s, r, &f).contains("read access"));
    }

    #[test]
    fn nvml_is_not_applicable_without_an_nvidia_gpu() {
        let reason = cases()[9].1;
        assert!(matches!(
            judge("gpu.nvml", reason, &gpus(0, 1)),
            Verdict::NotApplicable(w) if w.contains("no NVIDIA GPU")
        ));
        // Unknown bus: a failure, with the package that provides the library.
        let (s, r, f) = cases()[10];
        let text = fix(s, r, &f);
        assert!(
            text.contains("libnvidia-ml1") && text.contains("nvidia-smi"),
            "{text}"
        );
        let (s, r, f) = cases()[9];
        assert!(fix(s, r, &f).contains("ships with the NVIDIA driver"));
    }

    #[test]
    fn nvml_driver_permission_and_other_failures() {
        let (s, r, f) = cases()[11];
        assert!(fix(s, r, &f).contains("modprobe nvidia"));
        let (s, r, f) = cases()[12];
        assert!(fix(s, r, &f).contains("`render` and `video` groups"));
        let (s, r, f) = cases()[13];
        assert!(fix(s, r, &f).contains("nvidia-smi"));
        let (s, r, f) = cases()[14];
        assert!(fix(s, r, &f).contains("nvidia-smi"));
    }

    #[test]
    fn amdgpu_cases() {
        assert!(matches!(
            judge("gpu.amdgpu", cases()[15].1, &gpus(1, 0)),
            Verdict::NotApplicable(_)
        ));
        let (s, r, f) = cases()[15];
        assert!(fix(s, r, &f).contains("modprobe amdgpu"));
        let (s, r, f) = cases()[16];
        assert!(fix(s, r, &f).contains("`render` and `video` groups"));
        let (s, r, f) = cases()[17];
        assert!(fix(s, r, &f).contains("`render` and `video` groups"));
    }

    #[test]
    fn llama_server_without_metrics_or_slots() {
        let (s, r, f) = cases()[18];
        assert!(fix(s, r, &f).starts_with("restart llama-server with `--metrics`"));
        let (s, r, f) = cases()[19];
        assert!(fix(s, r, &f).contains("--no-slots"));
    }

    #[test]
    fn an_engine_answering_html_is_probably_a_web_ui_port() {
        for (s, r, f) in &cases()[20..23] {
            let text = fix(s, r, f);
            assert!(
                text.contains("web page") && text.contains("API port"),
                "{r}: {text}"
            );
        }
    }

    #[test]
    fn refused_timed_out_wrong_kind_loading_and_auth() {
        let (s, r, f) = cases()[23];
        assert!(fix(s, r, &f).starts_with("nothing answers at this URL"));
        let (s, r, f) = cases()[24];
        assert!(fix(s, r, &f).contains("engine_timeout"));
        let (s, r, f) = cases()[25];
        assert!(fix(s, r, &f).contains("not the configured kind"));
        let (s, r, f) = cases()[26];
        assert!(fix(s, r, &f).contains("loading its model"));
        let (s, r, f) = cases()[27];
        assert!(fix(s, r, &f).contains("unauthenticated"));
        let (s, r, f) = cases()[28];
        assert!(fix(s, r, &f).contains("configured kind and healthy"));
    }
}
