/* rubyobjnew: structs shared by rubyobjnew.bpf.c and src/tools/rubyobjnew/. */
#ifndef RUBYOBJNEW_H
#define RUBYOBJNEW_H

#define RUBYOBJNEW_NAME 64 /* class names kept */
#define RUBYOBJNEW_PATH 96 /* allocation site file names kept (the end of longer ones is lost) */

enum rubyobjnew_kind {
	RO_OBJECT = 0, /* ruby:object__create: class name, file, line */
	RO_STRING = 1, /* ruby:string__create: length, file, line */
	RO_ARRAY = 2,  /* ruby:array__create: length, file, line */
	RO_HASH = 3,   /* ruby:hash__create: size, file, line */
	RO_SYMBOL = 4, /* ruby:symbol__create: name, file, line */
};

struct ro_key {
	__u32 pid;  /* 0 unless -P */
	__u32 kind; /* enum rubyobjnew_kind */
	__u32 line; /* --site */
	__u32 pad;
	char klass[RUBYOBJNEW_NAME]; /* object__create only */
	char file[RUBYOBJNEW_PATH];  /* --site */
};

struct ro_stats {
	__u64 count;  /* allocations seen (1 in sample_every of them) */
	__u64 length; /* sum of the length argument (strings, arrays, hashes) */
};

#endif
