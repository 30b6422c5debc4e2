//! A whole file in one round trip, seen before and after its read: CREATE, READ and CLOSE as
//! one compound request whose CLOSE asks for the file's attributes (`POSTQUERY_ATTRIB`).
//!
//! The copy step checks that a file did not change while it was read by looking it up again
//! after the read (`Bronze::stage`'s recheck). Over a 10 ms link that lookup was half of a
//! copy's cost (BENCHMARKS.md, "Over a link"); the CLOSE of the read's own compound reports the
//! same size and mtime once the bytes were read, so the check costs no request. `smb2`'s
//! compound read closes without asking, hence this one.

use super::source::{info_meta, meta_of};
use crate::source::SourceMeta;
use smb2::client::Connection;
use smb2::msg::close::{CloseRequest, CloseResponse, SMB2_CLOSE_FLAG_POSTQUERY_ATTRIB};
use smb2::msg::create::{
    CreateDisposition, CreateRequest, CreateResponse, ImpersonationLevel, ShareAccess,
};
use smb2::msg::read::{ReadRequest, ReadResponse, SMB2_CHANNEL_NONE};
use smb2::pack::{FileTime, ReadCursor, Unpack};
use smb2::types::flags::{FileAccessMask, FileAttributes};
use smb2::types::status::NtStatus;
use smb2::types::{Command, CreditCharge, FileId, OplockLevel};
use smb2::{CompoundOp, Error, Frame, Tree};

/// A file read whole by one compound request.
pub(super) struct Whole {
    pub bytes: Vec<u8>,
    /// From the CREATE: the file as it was opened.
    pub opened: SourceMeta,
    /// From the CLOSE, once the bytes were read; `None` when the server did not say (the
    /// file went away meanwhile, or the read came another way): the copy then looks it up.
    pub closed: Option<SourceMeta>,
}

/// Reads `path` whole if one READ of `asked` bytes carries it, else
/// [`Error::FileTooLargeForSingleRead`] with the file's size. A DFS share is read by `smb2`'s
/// own compound (its paths carry the DFS prefix only `smb2` knows how to write).
pub(super) async fn read(
    conn: &mut Connection,
    tree: &Tree,
    path: &str,
    asked: u64,
) -> smb2::Result<Whole> {
    if tree.is_dfs {
        let (bytes, info) = tree
            .read_file_compound_sized_with_info(conn, path, asked)
            .await?;
        return Ok(Whole {
            bytes,
            opened: info_meta(&info),
            closed: None,
        });
    }
    let max_read = conn.params().map_or(65536, |p| p.max_read_size);
    // Floored at one byte: a zero-length READ charges no credit, which the spec forbids.
    let requested = u32::try_from(asked.min(u64::from(max_read)).max(1)).unwrap_or(max_read);
    let create = CreateRequest {
        requested_oplock_level: OplockLevel::None,
        impersonation_level: ImpersonationLevel::Impersonation,
        desired_access: FileAccessMask::new(
            FileAccessMask::FILE_READ_DATA
                | FileAccessMask::FILE_READ_ATTRIBUTES
                | FileAccessMask::SYNCHRONIZE,
        ),
        file_attributes: 0,
        // Never in a writer's way.
        share_access: ShareAccess(
            ShareAccess::FILE_SHARE_READ
                | ShareAccess::FILE_SHARE_WRITE
                | ShareAccess::FILE_SHARE_DELETE,
        ),
        create_disposition: CreateDisposition::FileOpen,
        create_options: 0,
        name: smb2::encode_path(path),
        create_contexts: vec![],
    };
    // The later requests name the handle the CREATE opens (the sentinel id, MS-SMB2 3.2.4.1.4).
    let read = ReadRequest {
        padding: 0x50,
        flags: 0,
        length: requested,
        offset: 0,
        file_id: FileId::SENTINEL,
        minimum_count: 0,
        channel: SMB2_CHANNEL_NONE,
        remaining_bytes: 0,
        read_channel_info: vec![],
    };
    let close = CloseRequest {
        flags: SMB2_CLOSE_FLAG_POSTQUERY_ATTRIB,
        file_id: FileId::SENTINEL,
    };
    let tree_id = Some(tree.tree_id);
    // A read is charged a credit per 64 KiB asked (MS-SMB2 3.2.4.1.2).
    let read_charge = u16::try_from(u64::from(requested).div_ceil(65536)).unwrap_or(u16::MAX);
    let ops = [
        CompoundOp::new(Command::Create, &create, tree_id),
        CompoundOp {
            command: Command::Read,
            body: &read,
            tree_id,
            credit_charge: CreditCharge(read_charge),
        },
        CompoundOp::new(Command::Close, &close, tree_id),
    ];
    // Sent unpinned (`smb2` keeps `Tree::pinned_conn` to itself): safe while the session never
    // reconnects in place (`auto_reconnect: false`, session.rs), so a tree id never outlives
    // the session it was given on.
    let frames = conn.execute_compound(&ops).await?;
    let [create, read, close] = three(frames)?;
    let opened = opened(&create)?;
    // Only a failed CREATE fails the requests after it (Samba, Windows): a READ that failed
    // leaves the CLOSE to close the handle, and only a failed CLOSE leaves it open.
    if close.header.status != NtStatus::SUCCESS {
        let _ = tree.close_handle(conn, opened.file_id).await;
    }
    // A file larger than the READ comes back truncated, and one exactly `requested` bytes long
    // is known whole only by the CREATE's size, which rides in the same frame.
    if opened.end_of_file > u64::from(requested) {
        return Err(Error::FileTooLargeForSingleRead {
            size: opened.end_of_file,
            requested,
        });
    }
    let bytes = match read.header.status {
        NtStatus::END_OF_FILE => Vec::new(),
        NtStatus::SUCCESS => ReadResponse::unpack(&mut ReadCursor::new(&read.body))?.data,
        status => {
            return Err(Error::Protocol {
                status,
                command: Command::Read,
            })
        }
    };
    Ok(Whole {
        bytes,
        opened: attributes_meta(
            opened.file_attributes,
            opened.end_of_file,
            opened.last_write_time,
        ),
        closed: closed_meta(&close),
    })
}

/// The three answers of a compound, or the first that failed on the way.
fn three(frames: Vec<smb2::Result<Frame>>) -> smb2::Result<[Frame; 3]> {
    let n = frames.len();
    let frames = frames.into_iter().collect::<smb2::Result<Vec<Frame>>>()?;
    frames
        .try_into()
        .map_err(|_| Error::invalid_data(format!("a compound read answered {n} of 3 requests")))
}

/// The CREATE's answer: the file as opened.
fn opened(create: &Frame) -> smb2::Result<CreateResponse> {
    let status = create.header.status;
    if status != NtStatus::SUCCESS {
        // The READ and CLOSE failed with it: no handle was opened.
        return Err(Error::Protocol {
            status,
            command: Command::Create,
        });
    }
    CreateResponse::unpack(&mut ReadCursor::new(&create.body))
}

/// The attributes the CLOSE reported, when it did (a server that could not look the file up
/// again answers without the flag).
fn closed_meta(close: &Frame) -> Option<SourceMeta> {
    if close.header.status != NtStatus::SUCCESS {
        return None;
    }
    let closed = CloseResponse::unpack(&mut ReadCursor::new(&close.body)).ok()?;
    if closed.flags & SMB2_CLOSE_FLAG_POSTQUERY_ATTRIB == 0 {
        return None;
    }
    Some(attributes_meta(
        closed.file_attributes,
        closed.end_of_file,
        closed.last_write_time,
    ))
}

/// [`meta_of`] the raw attributes, size and write time a CREATE or a CLOSE answers.
fn attributes_meta(attributes: u32, size: u64, modified: FileTime) -> SourceMeta {
    let attributes = FileAttributes::new(attributes);
    meta_of(attributes.is_directory(), &attributes, size, modified)
}
