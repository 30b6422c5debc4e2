//! A real S3-compatible object store for the Bronze-on-object-storage tests: a single Garage
//! node on 127.0.0.1 per test, started and stopped by `tools/garage` (the script the benchmarks
//! use), and a client to look into its bucket the way a downstream reader would.

// `stop` and `resume` serve a test that also needs the `sftp` feature.
#![cfg_attr(not(feature = "sftp"), allow(dead_code))]

use crate::util::{free_port, Rig};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::path::{Path, PathBuf};
use std::process::Command;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/garage")
}

/// A running Garage node with the bucket `bronze`; stopped (by its pid file) on drop.
pub struct Garage {
    /// Declared first, so they are dropped (the nodes stopped) before the state folder goes.
    _nodes: Vec<Node>,
    state: tempfile::TempDir,
    /// `AWS_*` variables that reach the node with the test key.
    pub env: Vec<(&'static str, String)>,
    client: AmazonS3,
    runtime: tokio::runtime::Runtime,
}

impl Garage {
    pub fn start() -> Garage {
        let state = tempfile::tempdir().unwrap();
        // Garage also binds PORT+1 (RPC) and PORT+3 (admin): a free port whose neighbours are
        // taken is retried with another.
        let mut last = String::new();
        for _ in 0..5 {
            let out = Command::new(script())
                .arg("start")
                .arg(state.path().join("node"))
                .arg(free_port().to_string())
                .output()
                .unwrap();
            if out.status.success() {
                // Stops the node even if connecting to it below panics.
                let node = Node(state.path().join("node"));
                let vars = String::from_utf8(out.stdout).unwrap();
                return Garage::connected(vec![node], state, &vars);
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
            let _ = Command::new(script())
                .arg("stop")
                .arg(state.path().join("node"))
                .status();
        }
        panic!("tools/garage start failed: {last}");
    }

    /// Three nodes (`tools/garage cluster`), replication factor 3: a write needs two of them.
    /// The client and the rigs reach node 1; nodes 2 and 3 can be stopped and resumed.
    pub fn cluster() -> Garage {
        let state = tempfile::tempdir().unwrap();
        let nodes = || (1..=3).map(|n| Node(state.path().join(format!("node{n}"))));
        let mut last = String::new();
        for _ in 0..5 {
            // S3 on PORT, PORT+10, PORT+20; RPC and admin on +1 and +3 of each.
            let out = Command::new(script())
                .arg("cluster")
                .arg(state.path())
                .arg(free_port().to_string())
                .output()
                .unwrap();
            let started: Vec<Node> = nodes().collect();
            if out.status.success() {
                let vars = String::from_utf8(out.stdout).unwrap();
                return Garage::connected(started, state, &vars);
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
            drop(started);
        }
        panic!("tools/garage cluster failed: {last}");
    }

    /// Stops node `n` of a cluster (its data kept).
    pub fn stop_node(&self, n: u8) {
        let dir = self.state.path().join(format!("node{n}"));
        let _ = Command::new(script()).arg("stop").arg(dir).status();
    }

    /// Starts node `n` of a cluster again, with its data.
    pub fn resume_node(&self, n: u8) {
        let dir = self.state.path().join(format!("node{n}"));
        let ok = Command::new(script())
            .arg("resume")
            .arg(dir)
            .status()
            .unwrap();
        assert!(ok.success(), "tools/garage resume node{n} failed");
    }

    fn connected(nodes: Vec<Node>, state: tempfile::TempDir, vars: &str) -> Garage {
        let env: Vec<(&'static str, String)> = vars
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (var_name(k), v.to_owned()))
            .collect();
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).unwrap().1.clone();
        // The same TLS provider the binary installs (reqwest is built without one).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = AmazonS3Builder::new()
            .with_bucket_name("bronze")
            .with_access_key_id(get("AWS_ACCESS_KEY_ID"))
            .with_secret_access_key(get("AWS_SECRET_ACCESS_KEY"))
            .with_region(get("AWS_REGION"))
            .with_endpoint(get("AWS_ENDPOINT_URL"))
            .with_allow_http(true)
            .build()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Garage {
            _nodes: nodes,
            state,
            env,
            client,
            runtime,
        }
    }

    /// A rig whose Bronze is this node's bucket below `prefix`.
    pub fn rig(&self, prefix: &str) -> Rig {
        let mut rig = Rig::new();
        rig.bronze = PathBuf::from(format!("s3://bronze/{prefix}"));
        rig.env.extend(self.env.iter().cloned());
        rig
    }

    /// The node's S3 address (for a relay in front of it).
    pub fn endpoint(&self) -> std::net::SocketAddr {
        let url = &self
            .env
            .iter()
            .find(|(k, _)| *k == "AWS_ENDPOINT_URL")
            .unwrap()
            .1;
        url.trim_start_matches("http://").parse().unwrap()
    }

    /// Every key below `prefix` (relative to it; `""`: the whole bucket), sorted.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        use futures::TryStreamExt;
        let prefix = Key::from(prefix);
        let metas: Vec<_> = self
            .runtime
            .block_on(self.client.list(Some(&prefix)).try_collect::<Vec<_>>())
            .unwrap();
        let mut keys: Vec<String> = metas
            .iter()
            .map(|m| {
                let key = m.location.as_ref();
                key[prefix.as_ref().len()..]
                    .trim_start_matches('/')
                    .to_owned()
            })
            .collect();
        keys.sort();
        keys
    }

    /// [`Garage::keys`] without ingest's own objects (the shipped log below `_ingest/`, which
    /// is not data: `bronze::layout::RESERVED`).
    pub fn data_keys(&self, prefix: &str) -> Vec<String> {
        let mut keys = self.keys(prefix);
        keys.retain(|k| !k.starts_with("_ingest/"));
        keys
    }

    pub fn get(&self, key: &str) -> Vec<u8> {
        let key = Key::parse(key).unwrap();
        self.runtime
            .block_on(async { self.client.get(&key).await?.bytes().await })
            .unwrap()
            .to_vec()
    }

    /// The `blake3` user metadata of an object.
    pub fn recorded_hash(&self, key: &str) -> Option<String> {
        let key = Key::parse(key).unwrap();
        let got = self.runtime.block_on(self.client.get(&key)).unwrap();
        got.attributes
            .get(&object_store::Attribute::Metadata("blake3".into()))
            .map(|v| v.to_string())
    }

    pub fn put(&self, key: &str, bytes: &[u8]) {
        let key = Key::parse(key).unwrap();
        let payload = PutPayload::from(bytes.to_vec());
        self.runtime
            .block_on(self.client.put(&key, payload))
            .unwrap();
    }

    /// Stores `bytes` under `key` exactly as written, `..` and all (what another tool or an
    /// attacker can write; the client above refuses such keys): curl with SigV4.
    pub fn put_raw(&self, key: &str, bytes: &[u8]) {
        let get = |k: &str| self.env.iter().find(|(n, _)| *n == k).unwrap().1.clone();
        let file = self.state.path().join("raw-body");
        std::fs::write(&file, bytes).unwrap();
        let out = Command::new("curl")
            .args([
                "-sf",
                "--path-as-is",
                "-X",
                "PUT",
                "--aws-sigv4",
                "aws:amz:garage:s3",
            ])
            .arg("--user")
            .arg(format!(
                "{}:{}",
                get("AWS_ACCESS_KEY_ID"),
                get("AWS_SECRET_ACCESS_KEY")
            ))
            .args([
                "-H",
                "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                "--data-binary",
            ])
            .arg(format!("@{}", file.display()))
            .arg(format!("{}/bronze/{key}", get("AWS_ENDPOINT_URL")))
            .output()
            .unwrap();
        assert!(out.status.success(), "curl PUT {key}: {out:?}");
    }

    pub fn delete(&self, key: &str) {
        let key = Key::parse(key).unwrap();
        self.runtime.block_on(self.client.delete(&key)).unwrap();
    }

    /// Stops the node (the store becomes unreachable), keeping its data.
    pub fn stop(&self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.state.path().join("node"))
            .status();
    }

    /// Takes the test key's right to write the bucket away; it may still list and read.
    pub fn read_only(&self) {
        let ok = Command::new(script())
            .arg("read-only")
            .arg(self.state.path().join("node"))
            .status()
            .unwrap();
        assert!(ok.success(), "tools/garage read-only failed");
    }

    /// Starts a stopped node again on the same port, with its data.
    pub fn resume(&self) {
        let ok = Command::new(script())
            .arg("resume")
            .arg(self.state.path().join("node"))
            .status()
            .unwrap();
        assert!(ok.success(), "tools/garage resume failed");
    }
}

/// A started node's state folder: the node is stopped when this is dropped.
struct Node(PathBuf);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.0).status();
    }
}

fn var_name(k: &str) -> &'static str {
    [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ALLOW_HTTP",
    ]
    .into_iter()
    .find(|v| *v == k)
    .unwrap_or_else(|| panic!("tools/garage printed an unexpected variable {k}"))
}
