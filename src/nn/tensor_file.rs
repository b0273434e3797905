//! The one tensor-file codec of the project: named f32 tensors (little-endian) and a
//! string-to-string header in a safetensors file. Model files (`model::file`), training
//! checkpoints (`train::checkpoint`) and the MTCNN weights (`detect::nets`) are all read
//! and written here; each adds only its own header keys and tensor names.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use super::{NnError, Result, Tensor};

/// Named tensors, in name order.
pub type Tensors = BTreeMap<String, Tensor>;

/// A decoded file: its header entries and every tensor.
#[derive(Debug, Clone, Default)]
pub struct TensorFile {
    pub metadata: HashMap<String, String>,
    pub tensors: Tensors,
}

/// The file's bytes for `tensors` with `metadata` in its header. safetensors orders the
/// tensors itself (by dtype, then name), so the bytes do not depend on the order given.
pub fn encode<'a>(
    tensors: impl IntoIterator<Item = (String, &'a Tensor)>,
    metadata: &HashMap<String, String>,
) -> Result<Vec<u8>> {
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, t)| {
            let bytes = t.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name, t.shape().to_vec(), bytes)
        })
        .collect();
    let views = raw
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|view| (name.clone(), view))
                .map_err(|e| NnError::TensorFile(format!("{name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, Some(metadata.clone()))
        .map_err(|e| NnError::TensorFile(e.to_string()))
}

/// The header entries alone, without reading the tensors (a reader that must know what
/// the file holds before it can check the tensors).
pub fn read_metadata(bytes: &[u8]) -> Result<HashMap<String, String>> {
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| NnError::TensorFile(e.to_string()))?;
    Ok(header.metadata().clone().unwrap_or_default())
}

/// The longest header [`read_header`] reads: safetensors' own bound.
const MAX_HEADER: u64 = 100_000_000;

/// The header entries of the file at `path`, reading its header alone (its first 8 + n
/// bytes), for a caller that must refuse a file that is not of its kind before it does
/// anything else. The tensors are neither read nor checked: [`read_metadata`] on the
/// whole file checks that they lie where the header says. The outer error is the file's
/// (it cannot be opened or read), the inner one its contents'.
pub fn read_header(path: &Path) -> std::io::Result<Result<HashMap<String, String>>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let bad = |what: String| Ok(Err(NnError::TensorFile(what)));
    if len < 8 {
        return bad(format!("a file of {len} bytes has no header"));
    }
    let mut n = [0u8; 8];
    file.read_exact(&mut n)?;
    let n = u64::from_le_bytes(n);
    if n > MAX_HEADER.min(len - 8) {
        return bad(format!(
            "a header of {n} bytes does not fit a file of {len} bytes"
        ));
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header)?;
    #[derive(serde::Deserialize)]
    struct Header {
        #[serde(rename = "__metadata__", default)]
        metadata: Option<HashMap<String, String>>,
    }
    Ok(serde_json::from_slice::<Header>(&header)
        .map(|h| h.metadata.unwrap_or_default())
        .map_err(|e| NnError::TensorFile(format!("header: {e}"))))
}

/// Every tensor and the header of a file written by [`encode`] (or by any safetensors
/// writer, as long as every tensor is F32).
pub fn decode(bytes: &[u8]) -> Result<TensorFile> {
    let metadata = read_metadata(bytes)?;
    let file = SafeTensors::deserialize(bytes).map_err(|e| NnError::TensorFile(e.to_string()))?;
    let mut tensors = Tensors::new();
    for (name, view) in file.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(NnError::TensorFile(format!(
                "tensor {name}: expected dtype F32, the file has {:?}",
                view.dtype()
            )));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let tensor = super::tensor::from_vec(view.shape(), values)
            .map_err(|e| NnError::TensorFile(format!("tensor {name}: {e}")))?;
        tensors.insert(name, tensor);
    }
    Ok(TensorFile { metadata, tensors })
}

/// Writes `bytes` to `path` through `path.partial`, synced before the rename, so a crash
/// leaves the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".partial");
    let tmp = PathBuf::from(tmp_name);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_and_metadata_round_trip_and_order_does_not_change_the_bytes() {
        let a = Tensor::from_shape_vec(vec![2, 3], vec![1.0, -2.5, 3.0, 0.0, 1e-30, 7.0]).unwrap();
        let b = Tensor::from_shape_vec(vec![1], vec![f32::MAX]).unwrap();
        let meta = HashMap::from([("k".to_string(), "v".to_string())]);
        let forward = encode([("a".into(), &a), ("b".into(), &b)], &meta).unwrap();
        let backward = encode([("b".into(), &b), ("a".into(), &a)], &meta).unwrap();
        assert_eq!(forward, backward);
        let file = decode(&forward).unwrap();
        assert_eq!(file.metadata, meta);
        assert_eq!(read_metadata(&forward).unwrap(), meta);
        assert_eq!(file.tensors["a"], a);
        assert_eq!(file.tensors["b"], b);
    }

    #[test]
    fn other_dtypes_and_garbage_are_errors() {
        let raw = [0u8; 8];
        let view = TensorView::new(Dtype::F64, vec![1], &raw).unwrap();
        let bytes = safetensors::serialize([("x".to_string(), view)], None).unwrap();
        let err = decode(&bytes).unwrap_err().to_string();
        assert!(err.contains("tensor x: expected dtype F32"), "{err}");
        assert!(decode(b"not a tensor file").is_err());
        assert!(read_metadata(b"").is_err());
    }

    #[test]
    fn an_atomic_write_leaves_no_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }
}
