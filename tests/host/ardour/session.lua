-- Run by ardour7-lua (tests/host/ardour-vst3.sh): a session with the dummy backend, a MIDI track
-- with the pianoforte VST3 and the "pianoforte capture" Lua processor after it. The transport
-- rolls, jumps back while rolling, rolls again and stops; every MIDI event the plugin emitted is
-- printed as "EV position status data1 data2" (position in samples of the capture's own count).
local rate = tonumber(os.getenv("PF_RATE") or "48000")
local buffer = tonumber(os.getenv("PF_BUFFER") or "256")
local dir = assert(os.getenv("PF_SESSION"), "PF_SESSION names the session folder")

local backend = AudioEngine:set_backend("None (Dummy)", "", "")
assert(AudioEngine:current_backend_name() == "Dummy", "the dummy backend is hidden: hide-dummy-backend=0 in the config")
backend:set_sample_rate(rate)
backend:set_buffer_size(buffer)

local session = create_session(dir, "pianoforte-test", rate)
assert(session, "cannot create a session in " .. dir)
print("RATE", Session:nominal_sample_rate(), "BUFFER", backend:buffer_size())

local tracks = Session:new_midi_track(
	ARDOUR.ChanCount(ARDOUR.DataType("midi"), 1), ARDOUR.ChanCount(ARDOUR.DataType("audio"), 2),
	false, ARDOUR.PluginInfo(), nil, nil, 1, "pianoforte", ARDOUR.PresentationInfo.max_order,
	ARDOUR.TrackMode.Normal, true)
local track = tracks:front()
local plugin = ARDOUR.LuaAPI.new_plugin(Session, "pianoforte", ARDOUR.PluginType.VST3, "")
assert(not plugin:isnil(), "Ardour does not know the pianoforte VST3 (did the scanner run?)")
assert(track:add_processor_by_index(plugin, 0, nil, true) == 0, "cannot add the plugin")
local capture = ARDOUR.LuaAPI.new_plugin(Session, "pianoforte capture", ARDOUR.PluginType.Lua, "")
assert(not capture:isnil(), "the capture script is missing from the scripts folder")
assert(track:add_processor_by_index(capture, 1, nil, true) == 0, "cannot add the capture processor")
local shm = capture:to_insert():plugin(0):to_luaproc():shmem()

local function mark(name)
	print("MARK", name, shm:atomic_get_int(1), Session:transport_sample())
end

-- Let the plugin load its model (the engine starts at activation).
ARDOUR.LuaAPI.usleep(3000000)
mark("roll")
Session:request_roll(ARDOUR.TransportRequestSource.TRS_UI)
ARDOUR.LuaAPI.usleep(12000000)
mark("jump")
Session:request_locate(0, false, ARDOUR.LocateTransportDisposition.MustRoll, ARDOUR.TransportRequestSource.TRS_UI)
ARDOUR.LuaAPI.usleep(8000000)
mark("stop")
Session:request_stop(false, false, ARDOUR.TransportRequestSource.TRS_UI)
ARDOUR.LuaAPI.usleep(1500000)
mark("end")

local n = shm:atomic_get_int(0)
local data = shm:to_int(2):array()
print("EVENTS", n, "CYCLES", shm:atomic_get_int(1))
for i = 0, n - 1 do
	print("EV", data[i * 4 + 1], data[i * 4 + 2], data[i * 4 + 3], data[i * 4 + 4])
end
close_session()
