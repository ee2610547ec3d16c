ardour {
	["type"]    = "dsp",
	name        = "pianoforte capture",
	category    = "Utility",
	license     = "MIT",
	author      = "pianoforte tests",
	description = [[Records every MIDI event passing through (sample position and bytes) into shared memory]]
}

local capacity = 20000
local fields = 4

function dsp_ioconfig ()
	return { { midi_in = 1, midi_out = 1, audio_in = -1, audio_out = -1 } }
end

function dsp_init (rate)
	self:shmem():allocate(2 + capacity * fields)
	self:shmem():atomic_set_int(0, 0) -- events recorded
	self:shmem():atomic_set_int(1, 0) -- cycles seen
end

local position = 0

function dsp_runmap (bufs, in_map, out_map, n_samples, offset)
	ARDOUR.DSP.process_map (bufs, n_out, in_map, out_map, n_samples, offset)
	local shm = self:shmem()
	local count = shm:atomic_get_int(0)
	local data = shm:to_int(2):array()
	local ib = in_map:get (ARDOUR.DataType ("midi"), 0)
	if ib ~= ARDOUR.ChanMapping.Invalid then
		for _, e in pairs (bufs:get_midi (ib):table ()) do
			if count < capacity then
				local b = e:buffer():array()
				local base = count * fields
				data[base + 1] = position + e:time()
				data[base + 2] = b[1]
				data[base + 3] = e:size() > 1 and b[2] or 0
				data[base + 4] = e:size() > 2 and b[3] or 0
				count = count + 1
			end
		end
	end
	shm:atomic_set_int(0, count)
	shm:atomic_set_int(1, shm:atomic_get_int(1) + 1)
	position = position + n_samples
end

function dsp_configure (ins, outs)
	n_out = outs
end
