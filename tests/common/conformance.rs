//! The datasets conformance suite: the same operations and the same errors
//! from every driver.

use std::io::Cursor;

use jetpack::names::DatasetName;
use jetpack::runtime::datasets::{DatasetError, Datasets};

fn name(s: &str) -> DatasetName {
    DatasetName::new(s).unwrap()
}

pub fn conformance(d: &dyn Datasets) {
    d.init().unwrap();
    d.init().unwrap(); // idempotent
    let base = name("bases/b1");
    assert!(!d.exists(&base).unwrap());
    let path = d.create(&base).unwrap();
    assert_eq!(path, d.path(&base));
    assert!(matches!(d.create(&base), Err(DatasetError::Exists(_))));
    std::fs::create_dir_all(path.join("etc")).unwrap();
    std::fs::write(path.join("etc/motd"), b"base\n").unwrap();

    let pod = name("pods/p1");
    assert!(
        matches!(d.clone_sealed(&base, &pod), Err(DatasetError::NotSealed(_))),
        "clone of an unsealed dataset"
    );
    d.seal(&base).unwrap();
    let clone = d.clone_sealed(&base, &pod).unwrap();
    assert_eq!(std::fs::read(clone.join("etc/motd")).unwrap(), b"base\n");
    std::fs::write(clone.join("etc/motd"), b"pod\n").unwrap();
    std::fs::write(clone.join("new"), b"x").unwrap();
    assert_eq!(
        std::fs::read(path.join("etc/motd")).unwrap(),
        b"base\n",
        "a write to the clone reached the base"
    );
    assert!(!path.join("new").exists());

    let listed = d.list().unwrap();
    let b = listed
        .iter()
        .find(|i| i.name == "bases/b1")
        .expect("base listed");
    assert!(b.sealed);
    let p = listed
        .iter()
        .find(|i| i.name == "pods/p1")
        .expect("pod listed");
    assert!(!p.sealed);
    assert!(d.usage(&base).unwrap() > 0);

    assert!(
        matches!(d.destroy(&base), Err(DatasetError::InUse(_))),
        "origin destroyed under its clone"
    );

    let mut stream = Vec::new();
    d.send(&base, &mut stream).unwrap();
    assert!(!stream.is_empty());
    let copy = name("bases/b2");
    let copy_path = d.receive(&copy, &mut Cursor::new(&stream)).unwrap();
    assert_eq!(
        std::fs::read(copy_path.join("etc/motd")).unwrap(),
        b"base\n"
    );
    let clone2 = d.clone_sealed(&copy, &name("pods/p2")).unwrap();
    assert!(
        clone2.join("etc/motd").exists(),
        "a received dataset is sealed and clonable"
    );
    let bad = name("bases/b3");
    assert!(d
        .receive(&bad, &mut Cursor::new(&stream[..stream.len() / 3]))
        .is_err());
    assert!(!d.exists(&bad).unwrap(), "a failed receive left a dataset");

    for n in ["pods/p1", "pods/p2", "bases/b1", "bases/b2"] {
        d.destroy(&name(n)).unwrap();
        assert!(!d.exists(&name(n)).unwrap());
    }
    assert!(matches!(d.destroy(&pod), Err(DatasetError::NotFound(_))));
    assert!(d.list().unwrap().is_empty(), "{:?}", d.list().unwrap());
}
