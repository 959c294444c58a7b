-- Netboot (issue 19, item 4): which unikernel a machine booting with iPXE
-- gets, by its MAC. A mapping names an image by id (fixed: it fails
-- clearly once the image is deleted, so no foreign key) or a tag (the
-- newest image with it, resolved at boot time).
CREATE TABLE netboot (
    mac         TEXT PRIMARY KEY,          -- aa:bb:cc:dd:ee:ff, lower case
    image_id    TEXT,                      -- a whole image id (40 hex)
    tag         TEXT,                      -- or a tag
    append      TEXT NOT NULL DEFAULT '',  -- the kernel command line (printable ASCII)
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    CHECK ((image_id IS NULL) <> (tag IS NULL))
);
