//! Times the layer code on real trees, for the numbers in the README:
//!
//! ```text
//! layer_bench write  STORE TREE...      one layer per tree; prints BLOB DIFF_ID per line
//! layer_bench unpack STORE BLOB=DIFF... unpack_image of those layers (side by side)
//! layer_bench import STORE TARBALL      import_tarball
//! ```

use std::path::Path;
use std::time::Instant;

use engine::image::{media_type, ImageConfig};
use engine::layer::{self, WriteOptions};
use engine::{Descriptor, Digest, Store};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, store, rest) = match args.as_slice() {
        [cmd, store, rest @ ..] if !rest.is_empty() => (cmd.as_str(), store, rest),
        _ => {
            eprintln!("usage: layer_bench write|unpack|import STORE ARGS...");
            std::process::exit(2);
        }
    };
    let store = Store::open(Path::new(store)).expect("open store");
    let t0 = Instant::now();
    match cmd {
        "write" => {
            for tree in rest {
                let b = layer::write_layer(&store, Path::new(tree), &WriteOptions::default())
                    .expect("write layer")
                    .expect("non-empty tree");
                println!("{}={} {}", b.digest, b.diff_id, b.size);
            }
        }
        "unpack" => {
            let mut config = ImageConfig::scratch();
            let mut layers = Vec::new();
            for pair in rest {
                let (blob, diff) = pair.split_once('=').expect("BLOB=DIFF_ID");
                let digest: Digest = blob.parse().expect("blob digest");
                let size = std::fs::metadata(store.blob_path(&digest))
                    .expect("blob")
                    .len();
                layers.push(Descriptor {
                    media_type: media_type::LAYER_ZSTD.into(),
                    digest,
                    size,
                    annotations: Default::default(),
                });
                config.rootfs.diff_ids.push(diff.parse().expect("diff id"));
            }
            let m = store.put_image(&config, layers).expect("put image");
            let image = store.image_by_digest(&m).expect("image");
            let t0 = Instant::now();
            let lowers = layer::unpack_image(&store, &image).expect("unpack image");
            eprintln!("unpack_image: {:?} ({} layers)", t0.elapsed(), lowers.len());
        }
        "import" => {
            let b = layer::import_tarball(&store, Path::new(&rest[0])).expect("import");
            println!("{}={} {}", b.digest, b.diff_id, b.size);
        }
        _ => {
            eprintln!("unknown command {cmd:?}");
            std::process::exit(2);
        }
    }
    eprintln!("{cmd}: {:?}", t0.elapsed());
}
