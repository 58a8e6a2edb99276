/* Test helper: copies local files into an NTFS volume image (a file) with libntfs-3g, creating the
 * folders on the way, without mounting anything.
 * Usage: ntfs_populate VOLUME < LIST   where each LIST line is "SOURCE<TAB>/NTFS/DEST/PATH".
 * Exit status: 0 ok, 1 failure. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ntfs-3g/types.h>
#include <ntfs-3g/attrib.h>
#include <ntfs-3g/dir.h>
#include <ntfs-3g/inode.h>
#include <ntfs-3g/unistr.h>
#include <ntfs-3g/volume.h>

static ntfs_inode *child(ntfs_volume *vol, ntfs_inode *dir, const char *path, const char *name, mode_t type) {
  ntfs_inode *found = ntfs_pathname_to_inode(vol, NULL, path);
  if (found) return found;
  ntfschar *uname = NULL;
  int length = ntfs_mbstoucs(name, &uname);
  if (length < 0) return NULL;
  ntfs_inode *created = ntfs_create(dir, const_cpu_to_le32(0), uname, (u8)length, type);
  free(uname);
  return created;
}

static int put(ntfs_volume *vol, const char *source, const char *dest) {
  char path[4096] = "";
  ntfs_inode *dir = ntfs_pathname_to_inode(vol, NULL, "/");
  const char *start = dest + 1;
  for (;;) {
    const char *slash = strchr(start, '/');
    char name[256];
    size_t length = slash ? (size_t)(slash - start) : strlen(start);
    if (length == 0 || length >= sizeof name) return -1;
    memcpy(name, start, length);
    name[length] = 0;
    strncat(path, "/", sizeof path - strlen(path) - 1);
    strncat(path, name, sizeof path - strlen(path) - 1);
    ntfs_inode *next = child(vol, dir, path, name, slash ? S_IFDIR : S_IFREG);
    ntfs_inode_close(dir);
    if (!next) return -1;
    dir = next;
    if (!slash) break;
    start = slash + 1;
  }
  FILE *in = fopen(source, "rb");
  if (!in) return -1;
  ntfs_attr *attr = ntfs_attr_open(dir, AT_DATA, AT_UNNAMED, 0);
  if (!attr) return -1;
  char buffer[65536];
  s64 offset = 0;
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, in)) > 0) {
    if (ntfs_attr_pwrite(attr, offset, (s64)n, buffer) != (s64)n) return -1;
    offset += (s64)n;
  }
  fclose(in);
  ntfs_attr_close(attr);
  ntfs_inode_close(dir);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: ntfs_populate VOLUME < LIST\n");
    return 1;
  }
  ntfs_volume *vol = ntfs_mount(argv[1], 0);
  if (!vol) {
    fprintf(stderr, "ntfs_populate: cannot open %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  char line[8192];
  int status = 0;
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = 0;
    char *tab = strchr(line, '\t');
    if (!tab || tab[1] != '/') continue;
    *tab = 0;
    if (put(vol, line, tab + 1) != 0) {
      fprintf(stderr, "ntfs_populate: %s -> %s: %s\n", line, tab + 1, strerror(errno));
      status = 1;
      break;
    }
  }
  if (ntfs_umount(vol, FALSE) != 0) status = 1;
  return status;
}
