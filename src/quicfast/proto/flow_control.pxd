# Flow-control windows for streams and the connection (RFC 9000 §4): the
# receive side decides and advertises limits (MAX_DATA / MAX_STREAM_DATA) with
# quic-go style auto-tuning; the send side tracks the peer's limit and when a
# DATA_BLOCKED / STREAM_DATA_BLOCKED frame is worth sending.

from libc.stdint cimport uint64_t, int64_t

# FLOW_CONTROL_ERROR is the transport error code of RFC 9000 §20.1.
cdef enum:
    FLOW_CONTROL_ERROR = 0x03


cdef class ReceiveWindow:
    # Receiver-side limit: starts at `initial` and doubles (up to `maximum`)
    # when the application consumed half a window in under ~2 RTTs; a new
    # limit is due once the unadvertised credit reaches half the window.

    # max_allowed is the limit advertised to the peer (absolute offset).
    cdef public uint64_t max_allowed
    # consumed is the number of bytes the application has read.
    cdef public uint64_t consumed
    # highest_received is the largest offset the peer has sent up to.
    cdef public uint64_t highest_received
    # window is the current window size; maximum the auto-tuning ceiling.
    cdef public uint64_t window, maximum
    # _epoch_start is when the current auto-tuning epoch began (ns, -1 = not
    # started); _epoch_offset is `consumed` at that moment.
    cdef int64_t _epoch_start
    cdef uint64_t _epoch_offset

    cdef void set_initial(self, uint64_t initial, uint64_t maximum)
    cdef int on_data_received(self, uint64_t new_highest) except -1
    cdef int on_data_added(self, uint64_t nbytes) except -1
    cdef void on_consumed(self, uint64_t nbytes, int64_t now, int64_t smoothed_rtt)
    cdef void _autotune(self, int64_t now, int64_t smoothed_rtt)
    cdef bint update_due(self)
    cdef uint64_t next_limit(self)
    cdef void grow_to(self, uint64_t window)


cdef class SendWindow:
    # Sender-side view of the peer's limit.

    # limit is the peer's current limit (absolute offset); used is how much
    # of it has been spent by new data.
    cdef public uint64_t limit
    cdef public uint64_t used
    # _blocked_limit is the limit a BLOCKED frame was last reported for;
    # _blocked_reported says whether one was.
    cdef uint64_t _blocked_limit
    cdef bint _blocked_reported

    cdef bint update(self, uint64_t new_limit)
    cdef uint64_t available(self)
    cdef void on_sent(self, uint64_t nbytes)
    cdef bint blocked_frame_due(self)
    cdef void on_blocked_lost(self, uint64_t limit)
